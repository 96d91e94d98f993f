"""The worker's events: built from what the slot groups, the settler, the lease keeper and the
heartbeat already hold, and handed to `app.events` (conveyor.events.bus).

Contract: every method returns at once and never raises for an observer (`EventBus.emit` only
appends to bounded buffers). Each checks `bus.wanted(type)` first, so a worker nobody listens to
builds no event: the reserve → run → settle path pays one set lookup per change. Events of a
process-pool child's call are emitted here, in the parent, which sees every outcome.

The worker-side task signals (task_received, task_revoked, task_rejected, task_unknown) are sent
beside their events (heralds.py): each skips all work when nothing is connected to it; a
connected receiver runs on the caller's thread, as in Celery (its exceptions are logged, never
raised), so the "returns at once" above holds only for receivers that do.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..brokers.base import Delivery
from ..clock import Clock
from ..events import (
    EventBus,
    EventType,
    TaskFailed,
    TaskLeaseLost,
    TaskReceived,
    TaskRejected,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
)
from ..message import Message
from ..results.base import ErrorInfo, Outcome
from ..states import TaskState
from . import heralds
from .executor import RunKind, RunResult
from .settle import Inflight

#: `Outcome.reason`s of a call the worker revoked itself, as TaskRevoked's flags.
_EXPIRED, _TERMINATED = "expired", "terminated"

Counts = Counter[RunKind]


def exception_text(error: ErrorInfo | None) -> str:
    """An error as Celery's `exception` field shows it: `Type('message')`."""
    return "" if error is None else f"{error.type}({error.message!r})"


def due_since(message: Message) -> float | None:
    """When the call became due (epoch seconds, its producer's clock): its `eta`, or when it
    was sent if later (or if it has none); None when the message does not say when it was sent
    (an older producer)."""
    sent = message.sent_at
    if sent is None:
        return None
    return sent if message.eta is None else max(sent, message.eta)


class WorkerEvents:
    """Emits the `task-*` events of one worker named `hostname` (timestamps on `clock`), and
    sends the matching signals: `sender` is their sender (the worker), `tasks` the registry that
    tells an unknown task's name from a known one and gives task_revoked its task object."""

    def __init__(
        self,
        bus: EventBus,
        hostname: str,
        clock: Clock,
        tasks: Mapping[str, Any] | None = None,
        sender: object = None,
    ) -> None:
        self.bus = bus
        self.hostname = hostname
        self._clock = clock
        self.tasks: Mapping[str, Any] = tasks if tasks is not None else {}
        self.sender = sender

    def received(self, item: Inflight) -> None:
        heralds.received(self.sender, item, self.hostname)
        if self.bus.wanted(EventType.TASK_RECEIVED):
            m, d = item.message, item.delivery
            self.bus.emit(
                TaskReceived(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=m.id,
                    name=m.shown_name,
                    queue=d.envelope.queue,
                    attempt=d.attempt,
                    retries=m.retries,
                    eta=m.eta,
                    parent_id=m.parent_id,
                    root_id=m.root_id,
                )
            )

    def started(self, item: Inflight, pid: Callable[[], int] = os.getpid) -> None:
        if self.bus.wanted(EventType.TASK_STARTED):
            m, d = item.message, item.delivery
            self.bus.emit(
                TaskStarted(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=m.id,
                    name=m.shown_name,
                    queue=d.envelope.queue,
                    attempt=d.attempt,
                    pid=pid(),
                    retries=m.retries,
                    queued_at=due_since(m),
                )
            )

    def ran(self, item: Inflight, result: RunResult) -> None:
        """What a finished run came to: succeeded, failed, retried or rejected (an ignored
        call, `Ignore`, has no event)."""
        kind = result.kind
        if kind is RunKind.SUCCESS and self.bus.wanted(EventType.TASK_SUCCEEDED):
            self.bus.emit(
                TaskSucceeded(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=item.message.id,
                    name=item.message.shown_name,
                    queue=item.delivery.envelope.queue,
                    runtime=result.finished_at - result.started_at,
                    retries=item.message.retries,
                )
            )
        elif kind is RunKind.FAILURE:
            self.failed(item, result.error, result.finished_at - result.started_at)
        elif kind is RunKind.RETRY and self.bus.wanted(EventType.TASK_RETRIED):
            error = result.error
            self.bus.emit(
                TaskRetried(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=item.message.id,
                    name=item.message.shown_name,
                    queue=item.delivery.envelope.queue,
                    exception=exception_text(error),
                    traceback=(error.traceback or "") if error is not None else "",
                    retries=result.retries,
                    eta=self._clock.now() + result.countdown,
                )
            )
        elif kind is RunKind.REJECT:
            why = exception_text(result.error)
            reason = f"{'requeued' if result.requeue else 'rejected'} by the task: {why}"
            # No task_rejected: a task's own Reject is told by task_postrun (state REJECTED).
            self._rejected(item.delivery, item.message.shown_name, reason, result.requeue)

    def failed(self, item: Inflight, error: ErrorInfo | None, runtime: float = 0.0) -> None:
        if self.bus.wanted(EventType.TASK_FAILED):
            self.bus.emit(
                TaskFailed(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=item.message.id,
                    name=item.message.shown_name,
                    queue=item.delivery.envelope.queue,
                    runtime=runtime,
                    exception=exception_text(error),
                    traceback=(error.traceback or "") if error is not None else "",
                    retries=item.message.retries,
                )
            )

    def ended(self, item: Inflight, outcome: Outcome, signum: int | None = None) -> None:
        """A call the worker ended itself: revoked (expired, terminated) or failed."""
        if outcome.state is TaskState.REVOKED:
            terminated, expired = outcome.reason == _TERMINATED, outcome.reason == _EXPIRED
            heralds.revoked(
                self.tasks,
                item,
                self.hostname,
                terminated=terminated,
                expired=expired,
                signum=signum,
            )
            if self.bus.wanted(EventType.TASK_REVOKED):
                self.bus.emit(
                    TaskRevoked(
                        hostname=self.hostname,
                        timestamp=self._clock.now(),
                        uuid=item.message.id,
                        name=item.message.shown_name,
                        queue=item.delivery.envelope.queue,
                        terminated=terminated,
                        expired=expired,
                        signum=signum,
                    )
                )
        elif outcome.state is TaskState.FAILURE:
            self.failed(item, outcome.error)

    def rejected(self, delivery: Delivery, name: str, reason: str) -> None:
        """A delivery the worker dead-letters instead of running (`name`: the task its body
        names, "" when unknown or untrusted): task-rejected, and task_unknown for a task this
        worker does not have, else task_rejected."""
        heralds.refused(self.sender, delivery, name, reason, name in self.tasks)
        self._rejected(delivery, name, reason)

    def _rejected(self, delivery: Delivery, name: str, reason: str, requeue: bool = False) -> None:
        if self.bus.wanted(EventType.TASK_REJECTED):
            self.bus.emit(
                TaskRejected(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=delivery.envelope.id,
                    name=name,
                    queue=delivery.envelope.queue,
                    reason=reason,
                    requeue=requeue,
                )
            )

    def lease_lost(self, item: Inflight) -> None:
        if self.bus.wanted(EventType.TASK_LEASE_LOST):
            self.bus.emit(
                TaskLeaseLost(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    uuid=item.message.id,
                    name=item.message.shown_name,
                    queue=item.delivery.envelope.queue,
                    attempt=item.delivery.attempt,
                )
            )

    # -- the worker itself ------------------------------------------------------------------
    def online(self, queues: tuple[str, ...], slots: int) -> None:
        if self.bus.wanted(EventType.WORKER_ONLINE):
            from .. import __version__  # the package imports the worker lazily; this too

            self.bus.emit(
                WorkerOnline(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    pid=os.getpid(),
                    queues=queues,
                    slots=slots,
                    sw_ver=__version__,
                )
            )

    def heartbeat(self, freq: float, slots: int, active: int, counts: Counts) -> None:
        """`counts`: runs settled since the worker started, by what they came to."""
        if self.bus.wanted(EventType.WORKER_HEARTBEAT):
            self.bus.emit(
                WorkerHeartbeat(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    pid=os.getpid(),
                    freq=freq,
                    slots=slots,
                    active=active,
                    processed=counts.total(),
                    succeeded=counts[RunKind.SUCCESS],
                    failed=counts[RunKind.FAILURE],
                    retried=counts[RunKind.RETRY],
                    loadavg=_loadavg(),
                )
            )

    def offline(self, processed: int) -> None:
        if self.bus.wanted(EventType.WORKER_OFFLINE):
            self.bus.emit(
                WorkerOffline(
                    hostname=self.hostname,
                    timestamp=self._clock.now(),
                    pid=os.getpid(),
                    processed=processed,
                )
            )


def _loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # not every platform can tell
        return (0.0, 0.0, 0.0)
