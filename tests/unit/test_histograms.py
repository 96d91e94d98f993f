"""worker/histograms.py: values land in Prometheus' `le` buckets (a value equal to a bound
counts in it), served cumulative with _count and _sum, the same as prometheus-client's
Histogram serves them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from conveyor.worker.histograms import Histograms

BOUNDS = (0.1, 1.0, 10.0, float("inf"))
VALUES = (0.0, 0.1, 0.5, 1.0, 9.99, 10.0, 11.0, 1e9)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_served_exactly_as_prometheus_clients_histogram_serves_the_same_values() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    mine = Histograms("h_seconds", "doc", ["task"], BOUNDS)
    ours.register(mine)
    reference = Histogram("h_seconds", "doc", ["task"], buckets=BOUNDS, registry=theirs)
    with mine.lock:
        for value in VALUES:
            mine.observe(("t",), value)
    for value in VALUES:
        reference.labels("t").observe(value)
    assert samples(ours) == samples(theirs)
    assert samples(ours)[("h_seconds_bucket", (("le", "0.1"), ("task", "t")))] == 2
    assert samples(ours)[("h_seconds_count", (("task", "t"),))] == len(VALUES)


def test_bounds_must_end_with_inf() -> None:
    with pytest.raises(ValueError, match=r"\+Inf"):
        Histograms("h", "doc", [], (0.1, 1.0))
