"""The worker's Prometheus metrics: counts of its task events, task runtimes, its slots, served
over HTTP at `/metrics` (`conveyor worker --metrics-port PORT`).

Contract:
- The counts come from the worker's own event stream (`app.events`): `WorkerMetrics.observe`
  is an observer subscribed in the worker's main process, which emits the events of every call,
  those run by process-pool children too; so nothing is missed when a child is recycled.
- Counters start at 0 when the worker starts; the bus delivers at most once, so a count lags
  (or, when an observer's buffer overflowed, misses) what happened, never exceeds it.
- `conveyor_task_runtime_seconds` observes the `runtime` of task-succeeded and task-failed
  events (a retry has no runtime in its event): its `_count` is succeeded + failed.
- The metrics live in a `CollectorRegistry` of this worker's own, not prometheus-client's
  global one: nothing another library registers there is served, and two workers in one
  process (tests) do not collide.
- `serve` binds before the worker consumes; an address in use is a ConfigurationError saying
  which, and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..events import (
    Event,
    EventType,
    TaskEvent,
    TaskFailed,
    TaskSucceeded,
)
from ..observability.serving import MetricsServer, serve_registry

#: Runtime buckets, seconds: from 5 ms up to 30 minutes.
RUNTIME_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, float("inf"),
)  # fmt: skip

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
    `version` is conveyor's, for `conveyor_build_info`."""

    def __init__(self, version: str, slots: Callable[[], Iterable[GroupSlots]]) -> None:
        self.registry = CollectorRegistry()
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
        self._runtime = Histogram(
            "conveyor_task_runtime_seconds",
            "Seconds from start to return of calls that succeeded or failed.",
            labels,
            buckets=RUNTIME_BUCKETS,
            registry=self.registry,
        )
        self.up = Gauge("conveyor_worker_up", "1 while the worker runs.", registry=self.registry)
        info = Gauge(
            "conveyor_build_info", "conveyor's version.", ["version"], registry=self.registry
        )
        info.labels(version).set(1)
        self.registry.register(_SlotsCollector(slots))
        self._server: MetricsServer | None = None

    def observe(self, event: Event) -> None:
        """Count one event (an observer for `app.events.subscribe(..., types=COUNTED)`)."""
        if not isinstance(event, TaskEvent):
            return
        queue = _queue(event)
        if isinstance(event, TaskFailed):
            self._failed.labels(event.name, queue, _type_name(event.exception)).inc()
        elif event.type in self._counters:
            self._counters[event.type].labels(event.name, queue).inc()
        if isinstance(event, TaskSucceeded | TaskFailed):
            self._runtime.labels(event.name, queue).observe(max(event.runtime, 0.0))

    def serve(self, host: str, port: int) -> None:
        """Serve `/metrics` on host:port from a daemon thread, and set `conveyor_worker_up`."""
        self._server = serve_registry(
            self.registry, host, port, "--metrics-port (or worker_metrics_port)"
        )
        self.up.set(1)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self.up.set(0)
        if self._server is not None:
            self._server.stop()
            self._server = None


def _queue(event: TaskEvent) -> str:
    """The event's queue; "" for task-revoked, whose event does not carry one."""
    queue = getattr(event, "queue", "")
    return queue if isinstance(queue, str) else ""


def _type_name(exception: str) -> str:
    """`ValueError('x')` → `ValueError`: the type, so the label's values stay few."""
    return exception.split("(", 1)[0].strip() or "unknown"
