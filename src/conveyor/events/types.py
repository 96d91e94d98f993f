"""The event records: one frozen record (a `msgspec.Struct`, slotted) per change in the life of a
call, a worker and the scheduler, and their JSON form.

Structs rather than frozen dataclasses because a busy worker builds three or four per call:
a Struct is built about ten times faster, and it is what encodes them to JSON anyway.

Names follow Celery's event reference where it has one: the `type` strings (`task-succeeded`,
`worker-heartbeat`, …) and the fields `uuid` (the task id), `name` (the task name), `hostname`,
`timestamp` (seconds since the epoch), `runtime` (seconds), `retries`, `exception`, `traceback`,
`eta`, `expires`, `parent_id`, `root_id`, `pid`, `terminated`, `expired`, `signum`, `freq`,
`active`, `processed` and `loadavg`. Fields of conveyor's own (`queue`, `attempt`, `slots`,
`reason`, `entry`, `scheduled_for`, `queued_at`) have no Celery counterpart.

`TaskStarted.queued_at` is when the call became due: its `eta` for a delayed call (a retry's
next run included), else when its producer sent it. It is read from the producer's clock
while `timestamp` is the worker's, so skew between their hosts shows in the difference; None
for a message of a producer too old to record its send time.

Events never carry a call's arguments or return value: those can hold secrets and can be large;
`result_extended` keeps them in the result store, behind its own access.

JSON form: `to_dict(event)` is a flat dict of plain values with a stable `type` key;
`from_dict(data)` checks every value's type and rebuilds the record. Keys a newer conveyor added
and this one does not know are ignored on decoding, so a mixed-version cluster can share one
stream; a missing or mistyped field is an `EventDecodeError`.
"""

from __future__ import annotations

import enum
import functools
import os
import socket
from typing import Any, ClassVar

import msgspec


class EventType(str, enum.Enum):
    """Celery's event names (and conveyor's own where Celery has none)."""

    TASK_SENT = "task-sent"
    TASK_RECEIVED = "task-received"
    TASK_STARTED = "task-started"
    TASK_SUCCEEDED = "task-succeeded"
    TASK_FAILED = "task-failed"
    TASK_RETRIED = "task-retried"
    TASK_REVOKED = "task-revoked"
    TASK_REJECTED = "task-rejected"
    TASK_LEASE_LOST = "task-lease-lost"
    WORKER_ONLINE = "worker-online"
    WORKER_HEARTBEAT = "worker-heartbeat"
    WORKER_OFFLINE = "worker-offline"
    SCHEDULE_FIRED = "schedule-fired"
    SCHEDULE_SKIPPED = "schedule-skipped"


class EventDecodeError(ValueError):
    """A dict that is not a valid event: unknown `type`, missing or mistyped field."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """What every event has: the host that produced it and when (seconds since the epoch)."""

    type: ClassVar[EventType]
    hostname: str
    timestamp: float


class TaskEvent(Event, frozen=True, kw_only=True):
    """An event about one call: `uuid` is its task id, `name` its task name."""

    uuid: str
    name: str


class TaskSent(TaskEvent, frozen=True, kw_only=True):
    """The producer enqueued a call (`eta`/`expires` in epoch seconds, None when unset)."""

    type: ClassVar[EventType] = EventType.TASK_SENT
    queue: str
    priority: int = 0
    retries: int = 0
    eta: float | None = None
    expires: float | None = None
    parent_id: str | None = None
    root_id: str | None = None


class TaskReceived(TaskEvent, frozen=True, kw_only=True):
    """A worker leased the call; `attempt` counts deliveries (1 for the first)."""

    type: ClassVar[EventType] = EventType.TASK_RECEIVED
    queue: str
    attempt: int
    retries: int = 0
    eta: float | None = None
    parent_id: str | None = None
    root_id: str | None = None


class TaskStarted(TaskEvent, frozen=True, kw_only=True):
    """The call began running in process `pid`; it had been due since `queued_at` (epoch
    seconds on its producer's clock; None when its message does not say)."""

    type: ClassVar[EventType] = EventType.TASK_STARTED
    queue: str
    attempt: int
    pid: int
    retries: int = 0
    queued_at: float | None = None


class TaskSucceeded(TaskEvent, frozen=True, kw_only=True):
    """The call returned; `runtime` is seconds from start to return."""

    type: ClassVar[EventType] = EventType.TASK_SUCCEEDED
    queue: str
    runtime: float
    retries: int = 0


class TaskFailed(TaskEvent, frozen=True, kw_only=True):
    """The call failed for good; `exception` is its repr, `traceback` the formatted text."""

    type: ClassVar[EventType] = EventType.TASK_FAILED
    queue: str
    runtime: float
    exception: str
    traceback: str = ""
    retries: int = 0


class TaskRetried(TaskEvent, frozen=True, kw_only=True):
    """The call failed and will run again at `eta`; `retries` counts this retry."""

    type: ClassVar[EventType] = EventType.TASK_RETRIED
    queue: str
    exception: str
    traceback: str = ""
    retries: int
    eta: float | None = None


class TaskRevoked(TaskEvent, frozen=True, kw_only=True):
    """The call will not run (or was stopped): `expired` past its `expires`, `terminated`
    killed while running (by `signum`, when a signal did it). `queue`: the queue it was
    delivered from ("" from a conveyor that did not say)."""

    type: ClassVar[EventType] = EventType.TASK_REVOKED
    queue: str = ""
    terminated: bool = False
    expired: bool = False
    signum: int | None = None


class TaskRejected(TaskEvent, frozen=True, kw_only=True):
    """The call was dead-lettered; `reason` says why (poison pill, `Reject`, …). `requeue`:
    the task raised `Reject(requeue=True)`, and the call went back to its queue instead."""

    type: ClassVar[EventType] = EventType.TASK_REJECTED
    queue: str
    reason: str
    requeue: bool = False


class TaskLeaseLost(TaskEvent, frozen=True, kw_only=True):
    """The worker lost its lease on a running call; the broker may deliver it again, and this
    worker's outcome for `attempt` will not be written."""

    type: ClassVar[EventType] = EventType.TASK_LEASE_LOST
    queue: str
    attempt: int


class WorkerOnline(Event, frozen=True, kw_only=True):
    """A worker started consuming `queues` with `slots` slots in all."""

    type: ClassVar[EventType] = EventType.WORKER_ONLINE
    pid: int
    queues: tuple[str, ...]
    slots: int
    sw_ident: str = "conveyor"
    sw_ver: str = ""


class WorkerHeartbeat(Event, frozen=True, kw_only=True):
    """A worker is alive: `active` of its `slots` are busy; counts are since it started;
    `freq` is the heartbeat interval in seconds; `loadavg` the host's 1/5/15-minute load."""

    type: ClassVar[EventType] = EventType.WORKER_HEARTBEAT
    pid: int
    freq: float
    slots: int
    active: int
    processed: int
    succeeded: int
    failed: int
    retried: int
    loadavg: tuple[float, float, float]


class WorkerOffline(Event, frozen=True, kw_only=True):
    """A worker stopped (warm or cold shutdown) after `processed` calls."""

    type: ClassVar[EventType] = EventType.WORKER_OFFLINE
    pid: int
    processed: int


class ScheduleFired(Event, frozen=True, kw_only=True):
    """The scheduler enqueued `entry`'s call `uuid` (deterministic: entry + `scheduled_for`)."""

    type: ClassVar[EventType] = EventType.SCHEDULE_FIRED
    entry: str
    name: str
    uuid: str
    scheduled_for: float


class ScheduleSkipped(Event, frozen=True, kw_only=True):
    """The scheduler did not fire `entry` for `scheduled_for`; `reason` says why."""

    type: ClassVar[EventType] = EventType.SCHEDULE_SKIPPED
    entry: str
    name: str
    scheduled_for: float
    reason: str


EVENT_CLASSES: dict[EventType, type[Event]] = {
    cls.type: cls
    for cls in (
        TaskSent,
        TaskReceived,
        TaskStarted,
        TaskSucceeded,
        TaskFailed,
        TaskRetried,
        TaskRevoked,
        TaskRejected,
        TaskLeaseLost,
        WorkerOnline,
        WorkerHeartbeat,
        WorkerOffline,
        ScheduleFired,
        ScheduleSkipped,
    )
}


def to_dict(event: Event) -> dict[str, Any]:
    """The event as a flat dict of JSON-ready values, `type` first (Celery's event name)."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    return {"type": event.type.value, **fields}


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from `to_dict`'s form (after a JSON round trip too).

    Raises EventDecodeError naming the unknown `type` or the bad field."""
    kind = data.get("type")
    try:
        cls = EVENT_CLASSES[EventType(kind)]
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise EventDecodeError(f"unknown event type {kind!r}; expected one of: {known}") from None
    fields = {key: value for key, value in data.items() if key != "type"}
    try:
        return msgspec.convert(fields, cls)
    except msgspec.ValidationError as exc:
        raise EventDecodeError(f"invalid {kind} event: {exc}") from None


def encode_json(event: Event) -> bytes:
    """One event as a compact JSON object (one line, no trailing newline)."""
    return msgspec.json.encode(to_dict(event))


def decode_json(raw: bytes | str) -> Event:
    """The inverse of `encode_json`; EventDecodeError when `raw` is not an event."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"event is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventDecodeError(f"event must be a JSON object, got {type(data).__name__}")
    return from_dict(data)


def producer_name() -> str:
    """The `hostname` of events a producer emits (`task-sent`): `gen<pid>@<host>`, as Celery's
    producers name themselves."""
    return f"gen{os.getpid()}@{_host()}"


@functools.cache
def _host() -> str:
    return socket.gethostname()
