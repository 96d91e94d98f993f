"""Labelled metric children, looked up once per label set."""

from __future__ import annotations

from typing import Any

from prometheus_client.metrics import MetricWrapperBase


class Children:
    """`metric.labels(*values)`, remembered. prometheus-client's `labels` takes a lock and builds
    its key on every call, which costs more than the increment; a worker counts a few events
    per call, so the children are looked up once per label set instead. Use from one thread
    (the metrics observer's)."""

    def __init__(self) -> None:
        self._known: dict[tuple[int | str, ...], Any] = {}

    def __call__(self, metric: MetricWrapperBase, *values: str) -> Any:
        # A metric lives as long as its registry, so its id is stable.
        key: tuple[int | str, ...] = (id(metric), *values)
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = metric.labels(*values)
        return found
