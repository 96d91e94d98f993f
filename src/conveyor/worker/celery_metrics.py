"""The worker's metrics under the names of the widely used Celery exporter
(danihodovic/celery-exporter), so dashboards and alerts written for it read a conveyor worker
unchanged: served beside conveyor's own names when the `metrics_celery_names` setting is True.

Contract:
- Counted from the very events conveyor's names count (`WorkerMetrics.observe` hands each to
  both), so a `celery_task_*_total` always equals its `conveyor_tasks_*_total`.
- Names, labels and buckets are the exporter's: counters `celery_task_<state>_total` labelled
  `name`, `hostname`, `queue_name` (`celery_task_failed_total` also `exception`: the exception's
  class name, `UnknownException` when it cannot be read); `celery_task_runtime` observes the
  runtime of calls that succeeded (only those, as the exporter does) in prometheus-client's
  default buckets (5 ms … 10 s); `celery_task_queue_wait_time` the same wait as
  `conveyor_task_queue_wait_seconds` in the exporter's buckets (50 ms … 30 min);
  `celery_worker_up{hostname}` and `celery_worker_tasks_active{hostname}` (busy slots, read at
  scrape time).
- `hostname` is the host part of the worker's name (`celery@web-1` → `web-1`), as the exporter
  reduces a Celery node name; a name without `@` is used whole.
- `celery_task_sent_total` and `celery_queue_length` are not a worker's to count (a worker sees
  neither its producers' sends nor its broker's backlog).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import Histogram
from prometheus_client.registry import Collector

from ..events import EventType, TaskEvent, TaskFailed, TaskSucceeded
from .histograms import Histograms

#: prometheus-client's default buckets, which the exporter's runtime histogram uses.
DEFAULT_BUCKETS = Histogram.DEFAULT_BUCKETS

#: The exporter's default queue-wait buckets, seconds: 50 ms up to 30 minutes.
QUEUE_WAIT_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    float("inf"),
)  # fmt: skip

_STATES = {
    EventType.TASK_RECEIVED: ("received", "Sent when the worker receives a task."),
    EventType.TASK_STARTED: ("started", "Sent just before the worker executes the task."),
    EventType.TASK_SUCCEEDED: ("succeeded", "Sent if the task executed successfully."),
    EventType.TASK_RETRIED: ("retried", "Sent if the task failed, but will be retried."),
    EventType.TASK_REVOKED: ("revoked", "Sent if the task has been revoked."),
    EventType.TASK_REJECTED: ("rejected", "The task was rejected by the worker."),
}

_CLASS_NAME = re.compile(r"[A-Za-z_]\w*")


def host_of(worker_name: str) -> str:
    """`celery@web-1` → `web-1`: the exporter's `hostname` label for a worker's node name."""
    return worker_name.split("@", 1)[1] if "@" in worker_name else worker_name


def exception_class(exception: str) -> str:
    """`ValueError('x')` → `ValueError`; `UnknownException` when no class name can be read
    (the exporter's value). A nested class's qualified name keeps its last part, as the
    exception's repr in a Celery event shows it."""
    head = exception.split("(", 1)[0].strip().rsplit(".", 1)[-1]
    return head if _CLASS_NAME.fullmatch(head) else "UnknownException"


class _ActiveCollector(Collector):
    """`celery_worker_tasks_active`: the busy slots, read at scrape time."""

    def __init__(self, hostname: str, busy: Callable[[], int]) -> None:
        self._hostname = hostname
        self._busy = busy

    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "celery_worker_tasks_active",
            "The number of tasks the worker is currently processing",
            labels=["hostname"],
        )
        active.add_metric([self._hostname], self._busy())
        yield active


class CeleryNames:
    """The Celery exporter's metrics of one worker named `worker_name`, in `registry`; `busy`
    counts its busy slots (at scrape time)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        worker_name: str,
        busy: Callable[[], int],
        lock: threading.Lock | None = None,
    ) -> None:
        self.hostname = host_of(worker_name)
        labels = ["name", "hostname", "queue_name"]
        self._counters = {
            kind: Counter(f"celery_task_{word}", text, labels, registry=registry)
            for kind, (word, text) in _STATES.items()
        }
        self._failed = Counter(
            "celery_task_failed",
            "Sent if the execution of the task failed.",
            ["name", "hostname", "exception", "queue_name"],
            registry=registry,
        )
        self._runtime = Histograms(
            "celery_task_runtime",
            "Histogram of task runtime measurements.",
            labels,
            DEFAULT_BUCKETS,
            lock,
        )
        self._wait = Histograms(
            "celery_task_queue_wait_time",
            "Histogram of the time tasks spend waiting in the queue before being executed, "
            "excluding deliberate ETA/countdown delay.",
            labels,
            QUEUE_WAIT_BUCKETS,
            lock,
        )
        registry.register(self._runtime)
        registry.register(self._wait)
        self._up = Gauge(
            "celery_worker_up",
            "Indicates if a worker has recently sent a heartbeat.",
            ["hostname"],
            registry=registry,
        ).labels(self.hostname)
        registry.register(_ActiveCollector(self.hostname, busy))

    def zero(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Give every counter a sample at 0 for each (task, queue) of `pairs` (failed: with
        `exception=""`, as the exporter starts it)."""
        for task, queue in pairs:
            for counter in self._counters.values():
                counter.labels(task, self.hostname, queue)
            self._failed.labels(task, self.hostname, "", queue)

    def observe(
        self, event: TaskEvent, queue: str, wait: float | None, counts: dict[tuple[Any, ...], int]
    ) -> None:
        """Count one task event from `queue`: counter increments are added to `counts`
        (metric, *labels) → n, for the caller to apply once per batch; `wait`: its queue wait
        (task-started only)."""
        key: tuple[Any, ...] | None = None
        if isinstance(event, TaskFailed):
            exception = exception_class(event.exception)
            key = (self._failed, event.name, self.hostname, exception, queue)
        elif event.type in self._counters:
            key = (self._counters[event.type], event.name, self.hostname, queue)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
        if isinstance(event, TaskSucceeded):
            runtime = max(event.runtime, 0)
            self._runtime.observe((event.name, self.hostname, queue), runtime)
        if wait is not None:
            self._wait.observe((event.name, self.hostname, queue), wait)

    def set_up(self, value: int) -> None:
        self._up.set(value)
