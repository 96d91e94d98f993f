"""Run one call and say what happened, without touching the broker or result store.

`execute` is the single place a task function is invoked for a message; it is shared by every
pool (it runs inside process-pool children) and by eager mode. Its `RunResult` is plain,
picklable data that the worker's settler turns into broker and result-store calls.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..compression import compress
from ..errors import EncodeError, Ignore, MaxRetriesExceededError, Reject, ResultTooLarge, Retry
from ..message import Message, encode_value
from ..request import Request, running
from ..results.base import MAX_COUNT, ErrorInfo, storable_text
from ..retry import autoretry_limit, backoff_delay, retries_exhausted
from . import announce, hooks

if TYPE_CHECKING:
    from ..task import Task


class RunKind(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    RETRY = "retry"
    REJECT = "reject"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run of a call came to. `value` is the encoded return value (SUCCESS);
    `countdown` and `retries` describe the next run (RETRY); `requeue` applies to REJECT;
    `killed`: a FAILURE made by the process pool for a child it killed at the hard limit."""

    kind: RunKind
    started_at: float
    finished_at: float
    value: bytes | None = None
    error: ErrorInfo | None = None
    countdown: float = 0.0
    retries: int = 0
    requeue: bool = False
    # The process running it was killed at its hard time limit: its hooks did not run there,
    # and the worker's main process runs on_failure and after_return for it (see hooks.py).
    killed: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    """A run's RunResult and what the signals report of it: the value the task returned, or
    the exception that ended it."""

    result: RunResult
    retval: Any


# The state task_postrun reports for each outcome (Celery's names).
POSTRUN_STATE = {
    RunKind.SUCCESS: "SUCCESS",
    RunKind.FAILURE: "FAILURE",
    RunKind.RETRY: "RETRY",
    RunKind.REJECT: "REJECTED",
    RunKind.IGNORE: "IGNORED",
}


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as text (type name, module, message, traceback), storable whatever the
    exception holds (ErrorInfo escapes what a store cannot keep)."""
    kind = type(exc)
    # KeyError("x") prints as "'x'"; keep the argument itself so it round-trips unchanged.
    single = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else None
    tb = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    return ErrorInfo(
        type=kind.__qualname__,
        message=single if single is not None else _str(exc),
        traceback=tb,
        module=kind.__module__,
    )


def _str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ itself fails must still be recorded
        return f"<{type(exc).__qualname__} whose message could not be read>"


def execute(task: Task, message: Message, request: Request) -> RunResult:
    """Run `task` for `message` with `request` as its context; never raises for task errors.
    Calls the Task's hooks and sends the task signals around the run, in this process, in
    Celery's order: task_prerun, before_start, the function, then on_success + task_success,
    on_failure + task_failure or on_retry + task_retry, then after_return (not after a Reject
    or an Ignore) and task_postrun. A signal receiver that raises is logged and changes
    nothing here; for the hooks see conveyor.worker.hooks."""
    with running(request):
        announce.prerun(task, message)
        run = _run(task, message)
        run = _finished(task, message, request, run)
    return run.result


def _finished(task: Task, message: Message, request: Request, run: Run) -> Run:
    if run.result.kind is RunKind.SUCCESS:
        run = hooks.succeeded(task, message, run)  # a raising on_success fails the call
        if run.result.kind is RunKind.SUCCESS:
            announce.succeeded(task, run.retval)
    kind = run.result.kind
    if kind is RunKind.FAILURE:
        hooks.failed(task, message, run.retval)
        announce.failed(task, message, run.retval)
    elif kind is RunKind.RETRY:
        hooks.retrying(task, message, run.retval)
        announce.retrying(task, request, run.retval)
    state = POSTRUN_STATE[kind]
    if kind is not RunKind.REJECT and kind is not RunKind.IGNORE:
        hooks.returned(task, message, state, run.retval)
    announce.postrun(task, message, run.retval, state)
    return run


def _run(task: Task, message: Message) -> Run:
    started = time.time()
    try:
        task.hook("before_start")(message.id, list(message.args), message.kwargs)
        value = task(*message.args, **message.kwargs)
        encoded = _encoded(task, value)
    except Retry as retry:
        if retry.retries > MAX_COUNT:
            over = _too_many(retry.retries)
            return Run(
                RunResult(RunKind.FAILURE, started, time.time(), error=error_info(over)), over
            )
        error = error_info(retry.exc) if retry.exc is not None else None
        result = RunResult(
            RunKind.RETRY,
            started,
            time.time(),
            error=error,
            countdown=retry.countdown,
            retries=retry.retries,
        )
        return Run(result, retry)
    except Reject as reject:
        result = RunResult(
            RunKind.REJECT, started, time.time(), error=error_info(reject), requeue=reject.requeue
        )
        return Run(result, reject)
    except Ignore as ignore:
        return Run(RunResult(RunKind.IGNORE, started, time.time()), ignore)
    except (EncodeError, ResultTooLarge) as exc:
        return Run(RunResult(RunKind.FAILURE, started, time.time(), error=error_info(exc)), exc)
    except Exception as exc:
        return Run(_failed(task, message, exc, started), exc)
    return Run(RunResult(RunKind.SUCCESS, started, time.time(), value=encoded), value)


def _encoded(task: Task, value: Any) -> bytes:
    """The return value as stored: JSON, at most `result_max_size` bytes, maybe compressed."""
    settings = task.app.conf.settings
    data = encode_value(value)
    if len(data) > settings.result_max_size:
        raise ResultTooLarge(
            f"the return value of {task.name} is {len(data)} bytes encoded, over the limit of "
            f"{settings.result_max_size} (setting result_max_size); store large data elsewhere "
            "and return a reference to it"
        )
    return compress(data, settings.result_compression, settings.result_compression_threshold)


def _too_many(retries: int) -> MaxRetriesExceededError:
    """The error of a retry whose count no store can hold: the call fails instead."""
    return MaxRetriesExceededError(
        f"retry number {retries} is beyond the most conveyor counts ({MAX_COUNT}); the call "
        "fails instead of retrying — set max_retries on the task to stop sooner"
    )


def _failed(task: Task, message: Message, exc: Exception, started: float) -> RunResult:
    """FAILURE, or RETRY when the exception is one the task retries automatically."""
    opts = task.options
    if (
        opts.autoretry_for
        and isinstance(exc, opts.autoretry_for)
        and not isinstance(exc, opts.dont_autoretry_for)
        and not retries_exhausted(autoretry_limit(opts), message.retries)
        and message.retries < MAX_COUNT
    ):
        delay = backoff_delay(opts, message.retries)
        return RunResult(
            RunKind.RETRY,
            started,
            time.time(),
            error=error_info(exc),
            countdown=delay,
            retries=message.retries + 1,
        )
    return RunResult(
        RunKind.FAILURE, started, time.time(), error=error_info(exc), value=exception_args(exc)
    )


#: The most bytes of a failed call's exception arguments kept beside its error.
EXCEPTION_ARGS_LIMIT = 16 * 1024


def exception_args(exc: BaseException) -> bytes | None:
    """The exception's `args` as JSON, stored as a FAILURE outcome's value (Celery keeps them
    too, as `exc_message`), so a reader that has the class loaded can build it again with the
    same arguments: `HttpError(status, headers, body)`, not `HttpError("<message>")`. None
    when the message alone says it all (no arguments, or one string), or when the arguments
    are not JSON or too large: the reader then falls back to the message."""
    args = exc.args
    if not args or (len(args) == 1 and isinstance(args[0], str)):
        return None
    try:
        data = encode_value(list(args), "exception arguments")
    except Exception:  # not JSON (an object, bytes…): the message is kept, as before
        return None
    return data if len(data) <= EXCEPTION_ARGS_LIMIT else None


def describe(result: RunResult) -> dict[str, Any]:
    """A short summary for logs."""
    out: dict[str, Any] = {
        "outcome": result.kind.value,
        "runtime": round(result.finished_at - result.started_at, 6),
    }
    if result.error is not None:
        out["error"] = storable_text(f"{result.error.type}: {result.error.message}")
    if result.kind is RunKind.RETRY:
        out["countdown"] = round(result.countdown, 3)
    return out
