"""AsyncResult: a handle on one call's outcome, read from the result store.

Also Celery's other result names, so `from conveyor.result import …` reads as it does in
Celery: `EagerResult` (what `task.apply()` returns), `ResultSet` and `GroupResult`, and the
`allow_join_result()` escape from the rule that a task must not wait for another's result.
"""

from __future__ import annotations

import builtins
import contextvars
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, RemoteError, TaskRevokedError, TimeoutError
from .message import Arguments, decode_arguments, decode_value
from .request import current_request
from .results.base import ErrorInfo, Outcome
from .states import TaskState

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.group_result import GroupResult


# -- rebuilding stored exceptions -------------------------------------------------------------
def rebuild_exception(error: ErrorInfo, args: Sequence[Any] | None = None) -> BaseException:
    """Turn a stored error back into an exception without importing anything named in storage.

    The exception comes back as its own class when that class is already loaded in this
    process (found through `sys.modules`, never imported), is an `Exception` subclass, and
    can be built from the stored arguments (`args`: the exception's own, kept beside a
    FAILURE) or else from the stored message as its one argument; otherwise as RemoteError,
    which carries the type's name, message and traceback as text."""
    cls = _loaded_class(error)
    exc: BaseException | None = None
    if cls is not None:
        exc = _built(cls, tuple(args)) if args is not None else None
        if exc is None:
            exc = _built(cls, (error.message,))
    if exc is None:
        qualified = error.type if error.module == "builtins" else f"{error.module}.{error.type}"
        exc = RemoteError(qualified, error.message, error.traceback)
    if error.traceback and hasattr(exc, "add_note"):
        exc.add_note("Remote traceback (most recent call last):\n" + error.traceback)
    return exc


def _built(cls: type[Exception], args: tuple[Any, ...]) -> Exception | None:
    try:
        return cls(*args)
    except Exception:  # a constructor that wants other arguments: keep the text
        return None


def _loaded_class(error: ErrorInfo) -> type[Exception] | None:
    """The exception class `error` names, if this process has already loaded it."""
    if error.module == "builtins":
        found: object = getattr(builtins, error.type, None)
    else:
        module = sys.modules.get(error.module)
        if module is None or "<" in error.type:  # not loaded, or a class local to a function
            return None
        found = module
        for part in error.type.split("."):
            found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return None


# -- waiting inside a task ------------------------------------------------------------------
_join_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "conveyor_join_allowed", default=False
)

WOULD_BLOCK = (
    "never call result.get() inside a task: the worker slot waits on another call that may "
    "need that very slot (a deadlock when all slots wait). Chain the calls instead "
    "(chain(a.s(), b.s()) or a callback with link=), or, when you accept the risk, pass "
    "disable_sync_subtasks=False or wrap the call in conveyor.result.allow_join_result()"
)


def assert_will_not_block() -> None:
    """Raise RuntimeError when called inside a task a worker is running (not in eager mode
    or a direct call), unless `allow_join_result()` is in effect."""
    req = current_request()
    if req is None or req.is_eager or req.called_directly or _join_allowed.get():
        return
    raise RuntimeError(WOULD_BLOCK)


@contextmanager
def allow_join_result() -> Iterator[None]:
    """Let the code inside wait for results even inside a task (as Celery's)."""
    token = _join_allowed.set(True)
    try:
        yield
    finally:
        _join_allowed.reset(token)


@contextmanager
def denied_join_result() -> Iterator[None]:
    """Undo an enclosing `allow_join_result()` for the code inside."""
    token = _join_allowed.set(False)
    try:
        yield
    finally:
        _join_allowed.reset(token)


def _default_app() -> Conveyor:
    """The current app (the most recently created or `set_default()` one)."""
    from . import app as app_module

    current: Any = app_module.current_app
    try:
        # current_app is a function here, a proxy where conveyor.local provides one.
        if hasattr(current, "_get_current_object"):
            return current._get_current_object()  # type: ignore[no-any-return]
        return current()  # type: ignore[no-any-return]
    except ConfigurationError:
        raise ConfigurationError(
            "a result without app= is read through the current app, and no Conveyor app "
            "exists in this process yet: import the module that creates yours first, or pass "
            "app=your_app"
        ) from None


OnMessage = Callable[[dict[str, Any]], Any]


class AsyncResult:
    """The outcome of the call with this id, as the result store knows it now.

    `app` defaults to the current app, so `AsyncResult(task_id)` works in a web view as in
    Celery. `ignored` is True for calls sent with `ignore_result`: their `get()` returns None
    at once, as Celery's does. `parent` is the previous step's result in a chain."""

    # -- canvas: Celery's `res.parent` and `res.children` on a workflow's handles ---------------
    #: The handle on the step before: a chain step's, or a chord body's header GroupResult
    #: (set by canvas/signature.py on the handle a workflow's apply_async returns).
    parent: AsyncResult | GroupResult | None
    #: The handles on its callbacks (`apply_async(link=...)`) on the handle that send
    #: returned, as Celery's `res.children`; None elsewhere (conveyor does not store them).
    children: list[AsyncResult | GroupResult] | None = None

    def __init__(
        self, id: str, app: Conveyor | None = None, parent: AsyncResult | None = None
    ) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError(f"AsyncResult needs a task id (a non-empty string), not {id!r}")
        self.id = id
        self._app = app
        self.parent = parent
        self.ignored = False

    @property
    def app(self) -> Conveyor:
        if self._app is None:
            self._app = _default_app()
        return self._app

    @property
    def task_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.id  # as Celery's: a result equals its id
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _outcome(self) -> Outcome | None:
        return self.app.results.get(self.id)

    @property
    def state(self) -> str:
        """The state's name: one of `conveyor.states` (each equal to its string, "SUCCESS"),
        or a name the task gave with `update_state` ("PROGRESS"). PENDING when nothing is
        stored."""
        return _state_of(self._outcome())

    status = state

    def ready(self) -> bool:
        """True once the call reached SUCCESS, FAILURE or REVOKED."""
        outcome = self._outcome()
        return outcome is not None and outcome.state.ready

    def successful(self) -> bool:
        return self.state == TaskState.SUCCESS

    def failed(self) -> bool:
        return self.state == TaskState.FAILURE

    @property
    def result(self) -> Any:
        """The return value after SUCCESS; the exception after FAILURE or during RETRY; the
        `meta` of the latest `update_state` while the call runs; `{"pid": None, "hostname":
        worker}` in STARTED before that (Celery gives the pid too)."""
        return _value_or_exception(self._outcome(), self.app.conf.settings.result_max_size)

    info = result

    @property
    def traceback(self) -> str | None:
        outcome = self._outcome()
        return outcome.error.traceback if outcome and outcome.error else None

    @property
    def outcome(self) -> Outcome | None:
        """Everything the store holds for this call (attempts, worker, timings)."""
        return self._outcome()

    @property
    def name(self) -> str | None:
        """The task's name (None while PENDING)."""
        outcome = self._outcome()
        return outcome.task_name if outcome else None

    @property
    def args(self) -> list[Any] | None:
        """The call's positional arguments; None unless stored (`result_extended=True`)."""
        arguments = self._arguments()
        return None if arguments is None else list(arguments.args)

    @property
    def kwargs(self) -> dict[str, Any] | None:
        """The call's keyword arguments; None unless stored (`result_extended=True`)."""
        arguments = self._arguments()
        return None if arguments is None else dict(arguments.kwargs)

    def _arguments(self) -> Arguments | None:
        outcome = self._outcome()
        if outcome is None or outcome.arguments is None:
            return None
        return decode_arguments(outcome.arguments)

    @property
    def queue(self) -> str | None:
        outcome = self._outcome()
        return outcome.queue if outcome else None

    @property
    def worker(self) -> str | None:
        outcome = self._outcome()
        return outcome.worker if outcome else None

    @property
    def retries(self) -> int | None:
        outcome = self._outcome()
        return outcome.retries if outcome else None

    @property
    def date_done(self) -> datetime | None:
        """When the call finished (UTC), as Celery's extended results give it."""
        outcome = self._outcome()
        return _date_done(outcome)

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        no_ack: bool = True,
        follow_parents: bool = True,
        callback: Callable[[str, Any], Any] | None = None,
        on_message: OnMessage | None = None,
        on_interval: Callable[[], Any] | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        """Wait for the call to finish and return its value.

        Raises TimeoutError if it is not finished within `timeout` seconds. After FAILURE,
        re-raises the task's exception (see `rebuild_exception`) unless `propagate=False`,
        which returns it instead; with `follow_parents`, a failed earlier step of the chain is
        raised first. Returns None at once for a call sent with `ignore_result`.

        `on_message(meta)` is called with Celery's meta dict (`status`, `result`, `traceback`,
        `task_id`, `children`, `date_done`) each time the stored state is seen to change,
        the final one included; `on_interval()` once per `interval` seconds of waiting; the
        store is then read every `interval` seconds, so states written faster than that may
        be skipped. `callback(task_id, value)` is called with the value before it is returned.
        Inside a task this raises RuntimeError unless `disable_sync_subtasks=False` (see
        `assert_will_not_block`). `no_ack` has no effect: reading a result never consumes it.
        """
        if self.ignored:
            return None
        if disable_sync_subtasks:
            assert_will_not_block()
        if follow_parents and propagate:
            self._reraise_parent_error()
        if on_message is None and on_interval is None:
            outcome = self.app.results.wait([self.id], timeout).get(self.id)
        else:
            outcome = self._watch(timeout, interval, on_message, on_interval)
        if outcome is None:
            raise TimeoutError(
                f"task {self.id} did not finish within {timeout} s (state {self.state})"
            )
        value = self._final_value(outcome)
        if propagate and isinstance(value, BaseException):
            if follow_parents:  # canvas: an earlier step failed meanwhile (a chord's member)
                self._reraise_parent_error()  # Celery checks the parents while it waits
            raise value
        if callback is not None:
            callback(self.id, value)
        return value

    def wait(self, timeout: float | None = None, propagate: bool = True, **options: Any) -> Any:
        return self.get(timeout=timeout, propagate=propagate, **options)

    def _final_value(self, outcome: Outcome) -> Any:
        if outcome.state is TaskState.REVOKED:
            return TaskRevokedError(f"task {self.id} was revoked: {outcome.reason or 'revoked'}")
        return _value_or_exception(outcome, self.app.conf.settings.result_max_size)

    def _watch(
        self,
        timeout: float | None,
        interval: float,
        on_message: OnMessage | None,
        on_interval: Callable[[], Any] | None,
    ) -> Outcome | None:
        """Poll the store every `interval` seconds (waking early when the call finishes),
        reporting each change to `on_message`; the ready outcome, or None at the timeout."""
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Outcome | None = None
        while True:
            outcome = self._outcome()
            if on_message is not None and outcome is not None and outcome != last:
                last = outcome
                on_message(self._meta(outcome))
            if outcome is not None and outcome.state.ready:
                return outcome
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if on_interval is not None:
                on_interval()
            step = interval if remaining is None else min(interval, remaining)
            self.app.results.wait([self.id], step)

    def _meta(self, outcome: Outcome) -> dict[str, Any]:
        """Celery's meta dict for one stored state (what on_message receives)."""
        done = _date_done(outcome)
        return {
            "task_id": self.id,
            "status": outcome.state_name,
            "result": self._final_value(outcome),
            "traceback": outcome.error.traceback if outcome.error else None,
            "children": [],
            "date_done": done.isoformat() if done else None,
        }

    def _reraise_parent_error(self) -> None:
        """Raise the error of the earliest failed step before this one (as Celery's get)."""
        parents: list[AsyncResult | GroupResult] = []
        node = self.parent
        while node is not None:
            parents.append(node)
            node = node.parent
        for parent in reversed(parents):
            parent.maybe_throw()

    def maybe_throw(
        self, propagate: bool = True, callback: Callable[[str, Any], Any] | None = None
    ) -> Any:
        """Raise the call's exception if it failed or was revoked; else return its value (or
        None while it is not ready). Never waits."""
        outcome = self._outcome()
        if outcome is None:
            return None
        value = self._final_value(outcome)
        if propagate and outcome.state.ready and isinstance(value, BaseException):
            raise value
        if callback is not None:
            callback(self.id, value)
        return value

    maybe_reraise = maybe_throw

    def revoke(self, terminate: bool = False) -> None:
        """Revoke this call (see `conveyor.control`)."""
        self.app.control.revoke(self.id, terminate=terminate)

    def forget(self) -> None:
        """Delete the stored outcome; the state reads PENDING afterwards."""
        self.app.results.forget([self.id])


class EagerResult(AsyncResult):
    """The result of a call that already ran here (`task.apply()`): holds its state and value
    itself and never reads the result store."""

    def __init__(
        self,
        id: str,
        ret_value: Any,
        state: str,
        traceback: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(id)
        self._value = ret_value
        self._state = state
        self._traceback = traceback
        self._name = name

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"

    @property
    def state(self) -> str:
        return self._state

    status = state

    @property
    def result(self) -> Any:
        return self._value

    info = result

    @property
    def traceback(self) -> str | None:
        return self._traceback

    @property
    def name(self) -> str | None:
        return self._name

    def ready(self) -> bool:
        return True

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        no_ack: bool = True,
        follow_parents: bool = True,
        callback: Callable[[str, Any], Any] | None = None,
        on_message: OnMessage | None = None,
        on_interval: Callable[[], Any] | None = None,
        disable_sync_subtasks: bool = True,
    ) -> Any:
        """The value; after FAILURE or REVOKED the exception is raised (`propagate`) or
        returned; None after IGNORED or REJECTED. Never waits (`timeout`, `interval`,
        `on_interval` have nothing to wait for); `on_message` gets the one final meta,
        `callback` the value."""
        if disable_sync_subtasks:
            assert_will_not_block()
        if on_message is not None:
            on_message(
                {
                    "task_id": self.id,
                    "status": self._state,
                    "result": self._value,
                    "traceback": self._traceback,
                    "children": [],
                    "date_done": None,
                }
            )
        value = self._value
        if self._state in (TaskState.FAILURE, TaskState.REVOKED):
            if propagate:
                raise value if isinstance(value, BaseException) else Exception(value)
        elif self._state != TaskState.SUCCESS:
            value = None  # IGNORED, REJECTED: no value, as Celery's
        if callback is not None:
            callback(self.id, value)
        return value

    def forget(self) -> None:
        """Nothing is stored for an eager result: nothing to forget."""
        return None

    def revoke(self, terminate: bool = False) -> None:
        """It has run already: only its state changes, as in Celery."""
        self._state = TaskState.REVOKED


def _state_of(outcome: Outcome | None) -> str:
    if outcome is None:
        return TaskState.PENDING
    return outcome.custom_state if outcome.custom_state is not None else outcome.state


def _exception_args(outcome: Outcome, limit: int) -> list[Any] | None:
    """The failed call's exception arguments, when the worker kept them (executor)."""
    if outcome.state is not TaskState.FAILURE or outcome.value is None:
        return None
    try:
        args = decode_value(outcome.value, limit)
    except Exception:  # unreadable: rebuild from the message instead
        return None
    return args if isinstance(args, list) else None


def _date_done(outcome: Outcome | None) -> datetime | None:
    if outcome is None or outcome.finished_at is None:
        return None
    return datetime.fromtimestamp(outcome.finished_at, timezone.utc)


def _value_or_exception(outcome: Outcome | None, limit: int) -> Any:
    """The value of a success (decompressed to at most `limit` bytes: result_max_size), the
    exception of a failure or retry, the meta of a state the task set itself."""
    if outcome is None:
        return None
    if outcome.error is not None:
        exc = rebuild_exception(outcome.error, _exception_args(outcome, limit))
        if outcome.reason and outcome.state is TaskState.FAILURE and hasattr(exc, "add_note"):
            exc.add_note(outcome.reason)  # e.g. which step of a chain failed
        return exc
    if outcome.value is not None:
        return decode_value(outcome.value, limit)
    if outcome.state is TaskState.STARTED and outcome.custom_state is None:
        # Celery's STARTED meta, so progress views' `result.info.get("current", 0)` work
        # before the task's first update_state. The worker's pid is not recorded.
        return {"pid": None, "hostname": outcome.worker}
    return None


# GroupResult and ResultSet are importable from here as in Celery. They live with the group
# code, which imports this module: resolved on first use, so neither import order matters.
if TYPE_CHECKING:
    from .canvas.group_result import GroupResult, ResultSet


def __getattr__(name: str) -> Any:
    if name in ("GroupResult", "ResultSet"):
        from .canvas import group_result

        return getattr(group_result, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncResult",
    "EagerResult",
    "GroupResult",
    "ResultSet",
    "allow_join_result",
    "assert_will_not_block",
    "denied_join_result",
    "rebuild_exception",
]
