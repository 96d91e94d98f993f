"""AsyncResult: a handle on one call's outcome, read from the result store."""

from __future__ import annotations

import builtins
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import RemoteError, TaskRevokedError, TimeoutError
from .message import Arguments, decode_arguments, decode_value
from .results.base import ErrorInfo, Outcome
from .states import TaskState

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.group_result import GroupResult


def rebuild_exception(error: ErrorInfo) -> BaseException:
    """Turn a stored error back into an exception without importing anything named in storage:
    builtin exception types come back as themselves, everything else as RemoteError."""
    cls = getattr(builtins, error.type, None) if error.module == "builtins" else None
    exc: BaseException
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            exc = cls(error.message)
        except TypeError:  # builtins with required extra arguments (UnicodeDecodeError…)
            exc = RemoteError(error.type, error.message, error.traceback)
    else:
        qualified = error.type if error.module == "builtins" else f"{error.module}.{error.type}"
        exc = RemoteError(qualified, error.message, error.traceback)
    if error.traceback and hasattr(exc, "add_note"):
        exc.add_note("Remote traceback (most recent call last):\n" + error.traceback)
    return exc


class AsyncResult:
    """The outcome of the call with this id, as the result store knows it now."""

    # -- canvas: Celery's `res.parent` ----------------------------------------------------------
    #: The handle on the step before, on a workflow's handle (a chain step's, a chord body's
    #: header GroupResult); None on a call sent alone or on a handle rebuilt from an id. Set
    #: by canvas/signature.py when it returns the handle.
    parent: AsyncResult | GroupResult | None = None
    #: The handles on its callbacks (`apply_async(link=...)`) on the handle that call
    #: returned, as Celery's `res.children`; None elsewhere (conveyor does not store them).
    children: list[AsyncResult | GroupResult] | None = None

    def __init__(self, id: str, app: Conveyor) -> None:
        self.id = id
        self.app = app

    @property
    def task_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id} {self.state.value}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def _outcome(self) -> Outcome | None:
        return self.app.results.get(self.id)

    @property
    def state(self) -> TaskState:
        outcome = self._outcome()
        return outcome.state if outcome else TaskState.PENDING

    status = state

    def ready(self) -> bool:
        """True once the call reached SUCCESS, FAILURE or REVOKED."""
        return self.state.ready

    def successful(self) -> bool:
        return self.state is TaskState.SUCCESS

    def failed(self) -> bool:
        return self.state is TaskState.FAILURE

    @property
    def result(self) -> Any:
        """The return value after SUCCESS; the exception after FAILURE or during RETRY."""
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
        if outcome is None or outcome.finished_at is None:
            return None
        return datetime.fromtimestamp(outcome.finished_at, timezone.utc)

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Wait for the call to finish and return its value.

        Raises TimeoutError if it is not finished within `timeout` seconds. After FAILURE,
        re-raises the task's exception (builtin types as themselves, others as RemoteError)
        unless `propagate=False`, which returns it instead.
        """
        found = self.app.results.wait([self.id], timeout)
        outcome = found.get(self.id)
        if outcome is None:
            raise TimeoutError(
                f"task {self.id} did not finish within {timeout} s (state {self.state.value})"
            )
        if outcome.state is TaskState.REVOKED:
            error = TaskRevokedError(f"task {self.id} was revoked: {outcome.reason or 'revoked'}")
            if propagate:
                raise error
            return error
        value = _value_or_exception(outcome, self.app.conf.settings.result_max_size)
        if propagate and isinstance(value, BaseException):
            raise value
        return value

    def wait(self, timeout: float | None = None, propagate: bool = True) -> Any:
        return self.get(timeout=timeout, propagate=propagate)

    def revoke(self, terminate: bool = False) -> None:
        """Revoke this call (see `conveyor.control`)."""
        self.app.control.revoke(self.id, terminate=terminate)

    def forget(self) -> None:
        """Delete the stored outcome; the state reads PENDING afterwards."""
        self.app.results.forget([self.id])


def _value_or_exception(outcome: Outcome | None, limit: int) -> Any:
    """The value of a success (decompressed to at most `limit` bytes: result_max_size), the
    exception of a failure."""
    if outcome is None:
        return None
    if outcome.state is TaskState.SUCCESS:
        return decode_value(outcome.value, limit) if outcome.value is not None else None
    if outcome.error is not None:
        exc = rebuild_exception(outcome.error)
        if outcome.reason and outcome.state is TaskState.FAILURE and hasattr(exc, "add_note"):
            exc.add_note(outcome.reason)  # e.g. which step of a chain failed
        return exc
    return None
