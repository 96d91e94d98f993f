"""The exception hierarchy. Every error conveyor raises on purpose derives from ConveyorError,
except the control-flow exceptions a task raises to steer its own settlement (Retry, Reject,
Ignore), which keep Celery's names so existing task code keeps working."""

from __future__ import annotations

import builtins
import sqlite3


class ConveyorError(Exception):
    """Base of conveyor's own errors."""


class ConfigurationError(ConveyorError):
    """A setting, URL, task option or command-line value is invalid. The message says what to do."""


class NotRegistered(ConveyorError, KeyError):
    """A task name is neither registered in the app nor published by any worker."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class EncodeError(ConveyorError, TypeError):
    """A value cannot be carried as JSON; nothing was enqueued or stored."""


class DecodeError(ConveyorError, ValueError):
    """A stored body is not a message conveyor can read."""


class MessageTooLarge(ConveyorError, ValueError):
    """An encoded message is larger than `task_message_max_size`; nothing was enqueued."""


class ResultTooLarge(ConveyorError, ValueError):
    """A task's encoded return value is larger than `result_max_size`; the call failed."""


class WorkflowError(ConveyorError):
    """A workflow cannot go on, and trying again would not change that: the next step's task is
    unknown, a step's message cannot be encoded, a chain is empty, a chord's header is empty or
    over `chord_max_size`, or a chord's stored description is missing (expired or forgotten).

    It is what every later step of the workflow fails with (FAILURE), naming the reason, when
    moving a workflow on meets any error but an outage (`OUTAGES`); the step that finished is
    acknowledged. An outage leaves the step unacknowledged, so it is delivered again and the
    follow-up retried (see canvas/flow.py)."""


class ChordError(ConveyorError):
    """What a chord's body fails with when a member of its header failed for good: `Dependency
    <member id> raised ValueError('…')`, as Celery's (the member's traceback is kept)."""


class MessageRejected(ConveyorError):
    """A worker refused a delivered message before running it and dead-lettered it: its body
    could not be read, names a task the worker does not have, is over task_message_max_size,
    nests too deeply, or carries another call's id. The call's outcome (under the envelope's
    id) is FAILURE with this error, naming the reason; `conveyor dlq show ID` shows the
    message, and `conveyor dlq redrive ID` sends it again once the cause is fixed."""


class OutcomeNotStored(ConveyorError):
    """The outcome of a call could not be written to the result store (the store refused it);
    the call is recorded as FAILURE with this error instead, naming the store's reason. The
    call ran and is not run again: fix what the store refused (most often what the task
    returned or raised) and send the call again."""


class TimeoutError(ConveyorError, builtins.TimeoutError):
    """A wait (`AsyncResult.get`, `wait`) ran out before the task finished."""


class RemoteError(ConveyorError):
    """A task failed with an exception that is not a builtin type.

    Carries the type's name, message and traceback as text; conveyor never imports a class whose
    name it read from storage.
    """

    def __init__(self, type_name: str, message: str, traceback: str | None = None) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


class MaxRetriesExceededError(ConveyorError):
    """`self.retry()` was called after `max_retries` with no exception to re-raise."""


class Retry(Exception):
    """Raised by `self.retry()`: settle this call as RETRY and run it again after `countdown`.

    Raised directly too (`raise Retry(countdown=5)`): `countdown` is checked as
    `self.retry()` checks it — finite seconds from 0 up to bounds.MAX_SECONDS — so a NaN or
    infinite delay fails the call with a ConfigurationError instead of being stored."""

    def __init__(
        self, exc: BaseException | None = None, countdown: float = 0.0, retries: int = 0
    ) -> None:
        from .bounds import check_seconds  # bounds imports this module

        countdown = check_seconds("retry countdown", countdown, zero=True)
        super().__init__(f"Retry in {countdown:g}s" + (f": {exc!r}" if exc else ""))
        self.exc = exc
        self.countdown = countdown
        self.retries = retries


class Reject(Exception):
    """Raised by a task to refuse its message. `requeue=False` dead-letters it."""

    def __init__(self, reason: object = None, requeue: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.requeue = requeue


class Ignore(Exception):
    """Raised by a task to settle its message without storing any outcome."""


class TaskRevokedError(ConveyorError):
    """The call was revoked (for example, it expired before it could start)."""


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task when its `soft_time_limit` passes: catch it to clean up."""


class TimeLimitExceeded(Exception):
    """The outcome of a call killed by its hard `time_limit`."""


class WorkerLostError(Exception):
    """The outcome of a call whose run was cut off (its process died) when the call may not
    run again: `acks_late=False` or `reject_on_worker_lost=False`."""


class BackendUnavailable(ConveyorError, ConnectionError):
    """A broker or result store server did not answer within the retry budget
    (`broker_retry_budget`). Nothing was silently dropped: the call that raised did not
    happen, or (for an enqueue) may be retried safely — enqueue is idempotent by task id."""


#: Errors that say a store or broker cannot be reached or cannot take writes *now* — not that
#: it refuses these writes: whoever gets one leaves the calls to be delivered again (leases run
#: out) instead of failing them. Server errors that pass with time (a restart, a failover, a
#: read-only replica, Redis out of memory under `noeviction`, a full disk) are retried by the
#: backend's guard and reach callers as BackendUnavailable once it gives up (guard.py); SQLite
#: reports a locked file as OperationalError. Anything else is a verdict on the request.
OUTAGES: tuple[type[Exception], ...] = (BackendUnavailable, sqlite3.OperationalError)
