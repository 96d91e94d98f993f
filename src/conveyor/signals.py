"""Signals with Celery's names and arguments (`from conveyor.signals import task_prerun`).

A `Signal` keeps a list of receivers; `send` calls each live one with `signal=`, `sender=` and
the signal's named arguments, and returns `[(receiver, result), ...]`. A receiver that raises
does not stop the others: its exception is logged (with the receiver's name) and stands in its
result. Receivers must accept `**kwargs` (later versions may send more arguments).

Where each signal fires: the task signals (`task_prerun`, `task_postrun`, `task_success`,
`task_failure`, `task_retry`) in the process that runs the task — a pool child for
`-P process`, the worker for `threads` and `solo`, the caller for eager calls — and
`worker_process_init` / `worker_process_shutdown` in each pool child; the publish signals in
the producer (sending.py); the other worker signals in the worker's main process (worker/).
docs/observability.md (Signals) says where and when each is sent.
"""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from traceback import format_exception
from types import TracebackType
from typing import Any, TypeVar, overload

from .errors import SoftTimeLimitExceeded, TimeLimitExceeded

log = logging.getLogger("conveyor.signals")

# A time limit arrives as an exception raised into whatever the task's thread runs, a receiver
# included: it is the limit of the run, not the receiver's error, so it is never swallowed.
_TIME_LIMITS = (SoftTimeLimitExceeded, TimeLimitExceeded)

Receiver = Callable[..., Any]
R = TypeVar("R", bound=Receiver)
_Key = tuple[Hashable, Hashable]
_Ref = Callable[[], Receiver | None]


def _id_of(target: object) -> Hashable:
    """How a receiver or sender is told apart: strings by value (senders that are task names),
    bound methods by (instance, function), anything else by identity."""
    if isinstance(target, str | bytes):
        return target
    if inspect.ismethod(target):
        return (id(target.__self__), id(target.__func__))
    return id(target)


def _name_of(receiver: object) -> str:
    module = getattr(receiver, "__module__", None) or "?"
    name = getattr(receiver, "__qualname__", None) or repr(receiver)
    return f"{module}.{name}"


def _accepts_kwargs(receiver: Receiver) -> bool:
    try:
        params = inspect.signature(receiver).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: it cannot be checked
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One connection: (receiver key, sender key), and the receiver, held weakly or not."""

    key: _Key
    ref: _Ref | None
    strong: Receiver | None

    def resolve(self) -> Receiver | None:
        return self.strong if self.ref is None else self.ref()


class Signal:
    """One signal. `name` is for logs; `providing_args` names the arguments `send` passes
    (besides `signal` and `sender`), as documented for the signal."""

    def __init__(self, name: str, providing_args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.providing_args = providing_args
        # Reentrant: worker_shutting_down is sent from a Unix signal handler, which may run in
        # the main thread while that thread holds this lock (a second SIGTERM arriving during
        # the first one's send); a plain Lock would deadlock the worker there.
        self._lock = threading.RLock()
        self._receivers: list[_Entry] = []
        self._dead = False  # a weakly held receiver was collected: prune on next use

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"

    @overload
    def connect(
        self,
        receiver: R,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> R: ...

    @overload
    def connect(
        self,
        receiver: None = None,
        *,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> Callable[[R], R]: ...

    def connect(
        self,
        receiver: R | None = None,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: Hashable | None = None,
    ) -> R | Callable[[R], R]:
        """Connect `receiver` (a call, or `@sig.connect` / `@sig.connect(sender=...)` as a
        decorator); returns the receiver unchanged. With `sender`, it receives only what that
        sender sends (a task object for task signals, a task name for publish signals).
        `weak=True` holds it by weak reference (a bound method lives as long as its instance);
        pass `weak=False` for a receiver nothing else keeps alive (a closure, a lambda).
        Connecting the same receiver (or `dispatch_uid`) for the same sender again does
        nothing."""

        def attach(fn: R) -> R:
            self._attach(fn, sender, weak, dispatch_uid)
            return fn

        return attach if receiver is None else attach(receiver)

    def _attach(
        self, receiver: Receiver, sender: object, weak: bool, dispatch_uid: Hashable | None
    ) -> None:
        if not callable(receiver):
            raise TypeError(f"{self.name}.connect needs a callable receiver, got {receiver!r}")
        if not _accepts_kwargs(receiver):
            raise ValueError(
                f"receiver {_name_of(receiver)} of {self.name} must accept keyword arguments: "
                "add **kwargs to its parameters"
            )
        key = (dispatch_uid if dispatch_uid is not None else _id_of(receiver), _id_of(sender))
        entry = _Entry(key, self._weak_ref(receiver) if weak else None, None if weak else receiver)
        with self._lock:
            self._prune()
            if all(e.key != key for e in self._receivers):
                self._receivers.append(entry)

    def _weak_ref(self, receiver: Receiver) -> _Ref:
        def collected(_: object) -> None:
            self._dead = True  # no lock here: collection may happen while it is held

        try:
            if inspect.ismethod(receiver):
                return weakref.WeakMethod(receiver, collected)
            return weakref.ref(receiver, collected)
        except TypeError:
            raise TypeError(
                f"receiver {receiver!r} of {self.name} cannot be held by weak reference: "
                "connect it with weak=False"
            ) from None

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object = None,
        dispatch_uid: Hashable | None = None,
    ) -> bool:
        """Disconnect what was connected with this receiver (or `dispatch_uid`) and sender;
        True if something was."""
        if receiver is None and dispatch_uid is None:
            raise TypeError(f"{self.name}.disconnect needs a receiver or a dispatch_uid")
        key = (dispatch_uid if dispatch_uid is not None else _id_of(receiver), _id_of(sender))
        with self._lock:
            for i, entry in enumerate(self._receivers):
                if entry.key == key:
                    del self._receivers[i]
                    return True
        return False

    @property
    def receivers(self) -> list[Receiver]:
        """Every live receiver, whatever its sender (empty, so false, when none is connected)."""
        with self._lock:
            entries = list(self._receivers)
        return [fn for fn in (e.resolve() for e in entries) if fn is not None]

    def live_receivers(self, sender: object = None) -> list[Receiver]:
        """The live receivers `send(sender)` would call, in the order they were connected."""
        skey = _id_of(sender)
        anyone = _id_of(None)
        with self._lock:
            entries = [e for e in self._receivers if e.key[1] in (anyone, skey)]
        return [fn for fn in (e.resolve() for e in entries) if fn is not None]

    def send(self, sender: object, **named: Any) -> list[tuple[Receiver, Any]]:
        """Call every live receiver for `sender` with `signal=self, sender=sender, **named`;
        returns `[(receiver, result or the exception it raised), ...]`. Never raises for a
        receiver's exception (it is logged with the receiver's name). What is not a receiver's
        error propagates: BaseExceptions that are not Exceptions (KeyboardInterrupt,
        SystemExit) and the time-limit exceptions, which arrive asynchronously in the task's
        thread and must end the run even while a receiver runs."""
        if not self._receivers:
            return []
        responses: list[tuple[Receiver, Any]] = []
        for receiver in self.live_receivers(sender):
            try:
                responses.append((receiver, receiver(signal=self, sender=sender, **named)))
            except _TIME_LIMITS:
                raise
            except Exception as exc:
                log.exception(
                    "signal %s: receiver %s raised %r", self.name, _name_of(receiver), exc
                )
                responses.append((receiver, exc))
        return responses

    def _prune(self) -> None:
        """Drop entries whose weakly held receiver is gone (called with the lock held)."""
        if not self._dead:
            return
        self._dead = False
        self._receivers = [e for e in self._receivers if e.resolve() is not None]


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """The `einfo` argument of task_failure and task_retry: the exception, its type, its
    traceback object (`tb`) and, formatted on demand, its traceback text (`traceback`)."""

    exception: BaseException

    @property
    def type(self) -> type[BaseException]:
        return type(self.exception)

    @property
    def tb(self) -> TracebackType | None:
        return self.exception.__traceback__

    @property
    def traceback(self) -> str:
        return "".join(format_exception(self.type, self.exception, self.tb))

    def __str__(self) -> str:
        return self.traceback


def _signal(name: str, *args: str) -> Signal:
    return Signal(name, args)


# -- task signals -------------------------------------------------------------------------
before_task_publish = _signal(
    "before_task_publish",
    "body",
    "exchange",
    "routing_key",
    "headers",
    "properties",
    "declare",
    "retry_policy",
)
"""Before a call is published. Sender: the task name."""
after_task_publish = _signal("after_task_publish", "headers", "body", "exchange", "routing_key")
"""After a call is published. Sender: the task name."""
task_received = _signal("task_received", "request")
"""A worker reserved and admitted a call. Sender: the worker."""
task_prerun = _signal("task_prerun", "task_id", "task", "args", "kwargs")
"""Before a task runs, in the process that runs it. Sender: the task object."""
task_postrun = _signal("task_postrun", "task_id", "task", "args", "kwargs", "retval", "state")
"""After a task ran, whatever the outcome. `retval` is the return value or the exception;
`state` the state name (SUCCESS, FAILURE, RETRY, REJECTED, IGNORED). Sender: the task."""
task_success = _signal("task_success", "result")
"""A task returned. `result` is its return value. Sender: the task object."""
task_failure = _signal(
    "task_failure", "task_id", "exception", "args", "kwargs", "traceback", "einfo"
)
"""A task failed. `traceback` is the traceback object, `einfo` an ExceptionInfo. Sender: the
task object."""
task_retry = _signal("task_retry", "request", "reason", "einfo")
"""A task will be retried. `reason` is the exception (a Retry, or the exception autoretry
caught); `request` the running call's Request. Sender: the task object."""
task_revoked = _signal("task_revoked", "request", "terminated", "signum", "expired")
"""A call was revoked or expired. Sender: the task object."""
task_rejected = _signal("task_rejected", "message", "exc")
"""A worker dead-letters a message it cannot run. Sender: the worker."""
task_unknown = _signal("task_unknown", "name", "id", "message", "exc")
"""A worker received a call of a task it does not know. Sender: the worker."""

# -- worker signals -----------------------------------------------------------------------
worker_init = _signal("worker_init")
"""Before the worker starts. Sender: the worker."""
worker_ready = _signal("worker_ready")
"""The worker is ready to take calls. Sender: the worker."""
worker_shutting_down = _signal("worker_shutting_down", "sig", "how", "exitcode")
"""The worker begins to shut down. Sender: the worker's host name."""
worker_shutdown = _signal("worker_shutdown")
"""The worker has shut down. Sender: the worker."""
worker_process_init = _signal("worker_process_init")
"""In each pool child (`-P process`) once the app is imported, before it takes a job: where
to open database connections and tracing exporters. Sender: None."""
worker_process_shutdown = _signal("worker_process_shutdown", "pid", "exitcode")
"""In each pool child as it exits. Sender: None."""
heartbeat_sent = _signal("heartbeat_sent")
"""The worker wrote a heartbeat. Sender: the worker."""

# -- beat and logging signals -------------------------------------------------------------
beat_init = _signal("beat_init")
"""`conveyor beat` starts. Sender: the scheduler service."""
setup_logging = _signal("setup_logging", "loglevel", "logfile", "format", "colorize")
"""Before logging is configured; a receiver that answers configures logging itself."""
after_setup_logger = _signal(
    "after_setup_logger", "logger", "loglevel", "logfile", "format", "colorize"
)
"""After the root logger is configured. Sender: None."""
after_setup_task_logger = _signal(
    "after_setup_task_logger", "logger", "loglevel", "logfile", "format", "colorize"
)
"""After the task logger is configured. Sender: None."""

__all__ = [
    "ExceptionInfo",
    "Signal",
    "after_setup_logger",
    "after_setup_task_logger",
    "after_task_publish",
    "beat_init",
    "before_task_publish",
    "heartbeat_sent",
    "setup_logging",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_init",
    "worker_process_init",
    "worker_process_shutdown",
    "worker_ready",
    "worker_shutdown",
    "worker_shutting_down",
]
