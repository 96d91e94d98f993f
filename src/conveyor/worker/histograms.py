"""Histograms of the worker's task events, kept as bucket counts and served through
prometheus-client's collector interface.

Why not prometheus-client's `Histogram`: its `observe` takes a lock and walks the bucket list
for every value, and a busy worker observes two values per call (runtime and queue wait); here
a value costs a bisect and two additions, under a lock taken once per batch of events. What is
served is the same: cumulative `_bucket{le=...}` samples, `_count` and `_sum` per label set.

Contract of `Histograms`:
- `observe(labels, value)` counts `value` in the first bucket whose upper bound is >= value
  (Prometheus' `le`); the last bound is +Inf, so every value is counted. Callers hold `lock`
  (one acquisition for a batch of observations).
- `collect()` reads a consistent copy under `lock`; label sets appear at their first value.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector


class Histograms(Collector):
    """One histogram metric `name` with label names `labels` and upper bounds `bounds` (the
    last must be +Inf). `lock` may be shared with the caller's own counting."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        bounds: Sequence[float],
        lock: threading.Lock | None = None,
    ) -> None:
        if not bounds or bounds[-1] != float("inf"):
            raise ValueError(f"histogram {name}: the last bucket bound must be +Inf")
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.bounds = tuple(bounds)
        self.lock = lock if lock is not None else threading.Lock()
        self._shown = ["+Inf" if b == float("inf") else repr(float(b)) for b in self.bounds]
        # label values -> [count per bucket..., sum]
        self._rows: dict[tuple[str, ...], list[float]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        """Count `value` for `labels` (the caller holds `lock`)."""
        row = self._rows.get(labels)
        if row is None:
            row = self._rows[labels] = [0.0] * (len(self.bounds) + 1)
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self.lock:
            rows = [(labels, list(row)) for labels, row in self._rows.items()]
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, row in rows:
            total, buckets = 0.0, []
            for shown, count in zip(self._shown, row[:-1], strict=True):
                total += count
                buckets.append((shown, total))
            family.add_metric(list(labels), buckets, sum_value=row[-1])
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
