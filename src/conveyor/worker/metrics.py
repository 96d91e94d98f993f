"""The worker's Prometheus metrics: counts of its task events, task runtimes, its slots, served
over HTTP at `/metrics` (`conveyor worker --metrics-port PORT`).

Contract:
- The counts come from the worker's own event stream (`app.events`): `WorkerMetrics.observe`
  is an observer subscribed in the worker's main process, which emits the events of every call,
  those run by process-pool children too; so nothing is missed when a child is recycled.
- Counters start at 0 when the worker starts; the bus delivers at most once, so a count lags
  (or, when an observer's buffer overflowed, misses) what happened, never exceeds it.
- The worker subscribes `observe_batch` with `subscribe_batches`: its thread wakes once per
  batch of events and adds each counter's count once per batch, not once per event (per event,
  a busy worker spent several times more CPU on its metrics).
- `conveyor_task_runtime_seconds` observes the `runtime` of task-succeeded and task-failed
  events (a retry has no runtime in its event): its `_count` is succeeded + failed.
- `conveyor_task_queue_wait_seconds` observes, for each task-started event that says when its
  call became due (`queued_at`), the seconds from then to the start, clipped at 0 (the two times
  come from the producer's and the worker's clocks): its `_count` is the calls started whose
  message carries a send time.
- Every counter but failed (whose `exception` label is not known in advance) has a sample at 0
  for each task the worker has registered and each queue it consumes, from the start: tasks ×
  queues label sets, no more.
- With `celery_names`, the Celery exporter's names are served too (celery_metrics.py), counted
  from the same events.
- The metrics live in a `CollectorRegistry` of this worker's own, not prometheus-client's
  global one: nothing another library registers there is served, and two workers in one
  process (tests) do not collide.
- `serve` binds before the worker consumes; an address in use is a ConfigurationError saying
  which, and what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..events import (
    Event,
    EventType,
    TaskEvent,
    TaskFailed,
    TaskStarted,
    TaskSucceeded,
)
from ..observability.serving import MetricsServer, serve_registry
from .celery_metrics import CeleryNames
from .histograms import Histograms
from .labels import Children

#: Runtime buckets, seconds: from 5 ms up to 30 minutes.
RUNTIME_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, float("inf"),
)  # fmt: skip

#: Queue-wait buckets, seconds: the runtime's, 5 ms up to 30 minutes.
QUEUE_WAIT_BUCKETS = RUNTIME_BUCKETS

#: The event types the metrics count (the observer subscribes to these only).
COUNTED = frozenset(
    {
        EventType.TASK_RECEIVED,
        EventType.TASK_STARTED,
        EventType.TASK_SUCCEEDED,
        EventType.TASK_FAILED,
        EventType.TASK_RETRIED,
        EventType.TASK_REVOKED,
        EventType.TASK_REJECTED,
    }
)

_COUNTERS = {
    EventType.TASK_RECEIVED: ("received", "Calls this worker leased."),
    EventType.TASK_STARTED: ("started", "Calls that began running."),
    EventType.TASK_SUCCEEDED: ("succeeded", "Calls that returned."),
    EventType.TASK_RETRIED: ("retried", "Calls that failed and will run again."),
    EventType.TASK_REVOKED: ("revoked", "Calls revoked (expired, revoked, terminated)."),
    EventType.TASK_REJECTED: ("rejected", "Deliveries dead-lettered or requeued by Reject."),
}


@dataclass(frozen=True, slots=True)
class GroupSlots:
    """One slot group at a moment: its name (its `-Q` spec), slots, and how many are busy."""

    group: str
    slots: int
    busy: int


class _SlotsCollector(Collector):
    """Reads the slot groups at scrape time, so the gauges are never stale."""

    def __init__(self, read: Callable[[], Iterable[GroupSlots]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        slots = GaugeMetricFamily("conveyor_worker_slots", "Slots of a group.", labels=["group"])
        busy = GaugeMetricFamily(
            "conveyor_worker_slots_busy", "Slots of a group running a call.", labels=["group"]
        )
        for group in self._read():
            slots.add_metric([group.group], group.slots)
            busy.add_metric([group.group], group.busy)
        yield slots
        yield busy


class WorkerMetrics:
    """The metrics of one worker, in `registry`. `slots` reads its slot groups (at scrape time);
    `version` is conveyor's, for `conveyor_build_info`. `tasks` (registered task names) and
    `queues` (the queues it consumes) get their counters' samples at 0 from the start.
    `celery_names`: also serve the Celery exporter's names, with `hostname` from
    `worker_name`."""

    def __init__(
        self,
        version: str,
        slots: Callable[[], Iterable[GroupSlots]],
        *,
        worker_name: str = "",
        tasks: Iterable[str] = (),
        queues: Iterable[str] = (),
        celery_names: bool = False,
    ) -> None:
        self.registry = CollectorRegistry()
        self._child = Children()
        labels = ["task", "queue"]
        self._counters = {
            kind: Counter(f"conveyor_tasks_{word}", text, labels, registry=self.registry)
            for kind, (word, text) in _COUNTERS.items()
        }
        self._failed = Counter(
            "conveyor_tasks_failed",
            "Calls that failed for good; `exception` is the exception's type name.",
            [*labels, "exception"],
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._runtime = Histograms(
            "conveyor_task_runtime_seconds",
            "Seconds from start to return of calls that succeeded or failed.",
            labels,
            RUNTIME_BUCKETS,
            self._lock,
        )
        self._wait = Histograms(
            "conveyor_task_queue_wait_seconds",
            "Seconds from when a call became due (sent, or its eta) to its start.",
            labels,
            QUEUE_WAIT_BUCKETS,
            self._lock,
        )
        self.registry.register(self._runtime)
        self.registry.register(self._wait)
        self.up = Gauge("conveyor_worker_up", "1 while the worker runs.", registry=self.registry)
        info = Gauge(
            "conveyor_build_info", "conveyor's version.", ["version"], registry=self.registry
        )
        info.labels(version).set(1)
        self.registry.register(_SlotsCollector(slots))
        self._celery: CeleryNames | None = None
        if celery_names:

            def busy() -> int:
                return sum(group.busy for group in slots())

            self._celery = CeleryNames(self.registry, worker_name, busy, self._lock)
        self._zero(tasks, queues)
        self._server: MetricsServer | None = None

    def _zero(self, tasks: Iterable[str], queues: Iterable[str]) -> None:
        """Samples at 0 for each task × queue, so `rate()` and alerts see them from the start."""
        pairs = [(t, q) for t in dict.fromkeys(tasks) for q in dict.fromkeys(queues)]
        for task, queue in pairs:
            for counter in self._counters.values():
                counter.labels(task, queue)
        if self._celery is not None:
            self._celery.zero(pairs)

    def observe(self, event: Event) -> None:
        """Count one event."""
        self.observe_batch([event])

    def observe_batch(self, events: list[Event]) -> None:
        """Count a batch of events (an observer for `app.events.subscribe_batches(...,
        types=COUNTED)`): one increment per counter and label set per batch, so a busy worker
        pays for each event little more than the bus's hand-off."""
        counts: dict[tuple[Any, ...], int] = {}
        with self._lock:
            for event in events:
                self._count(event, counts)
            for (metric, *labels), n in counts.items():
                self._child(metric, *labels).inc(n)

    def _count(self, event: Event, counts: dict[tuple[Any, ...], int]) -> None:
        # Runs for every event of a busy worker: one type lookup, then only what it needs.
        kind = event.type
        if kind not in COUNTED or not isinstance(event, TaskEvent):
            return
        queue = _queue(event)
        key: tuple[Any, ...]
        wait = None
        if isinstance(event, TaskSucceeded):
            key = (self._counters[kind], event.name, queue)
            self._runtime.observe((event.name, queue), max(event.runtime, 0.0))
        elif isinstance(event, TaskStarted):
            key = (self._counters[kind], event.name, queue)
            if event.queued_at is not None:
                wait = max(event.timestamp - event.queued_at, 0.0)  # two hosts' clocks: skew
                self._wait.observe((event.name, queue), wait)
        elif isinstance(event, TaskFailed):
            key = (self._failed, event.name, queue, _type_name(event.exception))
            self._runtime.observe((event.name, queue), max(event.runtime, 0.0))
        else:
            key = (self._counters[kind], event.name, queue)
        counts[key] = counts.get(key, 0) + 1
        if self._celery is not None:
            self._celery.observe(event, queue, wait, counts)

    def serve(self, host: str, port: int) -> None:
        """Serve `/metrics` on host:port from a daemon thread, and set `conveyor_worker_up`."""
        self._server = serve_registry(
            self.registry, host, port, "--metrics-port (or worker_metrics_port)"
        )
        self._set_up(1)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._set_up(0)
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _set_up(self, value: int) -> None:
        self.up.set(value)
        if self._celery is not None:
            self._celery.set_up(value)


def _queue(event: TaskEvent) -> str:
    """The event's queue ("" when it does not carry one)."""
    queue: str = getattr(event, "queue", "")
    return queue


def _type_name(exception: str) -> str:
    """`ValueError('x')` → `ValueError`: the type, so the label's values stay few."""
    return exception.split("(", 1)[0].strip() or "unknown"
