"""Calling a Task class's hooks for one run, with Celery's arguments, in the process that ran it.

The hooks are methods of `conveyor.Task` that a base class (`base=`, `task_cls=`) overrides:
`before_start(task_id, args, kwargs)` before the function, then one of
`on_success(retval, task_id, args, kwargs)`, `on_failure(exc, task_id, args, kwargs, einfo)` or
`on_retry(exc, task_id, args, kwargs, einfo)`, then `after_return(status, retval, task_id,
args, kwargs, einfo)` — not after a Reject or an Ignore, as in Celery. `args` is a list, as
Celery's worker passes the arguments it decoded.

What a raising hook does follows Celery: `before_start` raising fails the call (executor.py
calls it inside the run); `on_success` raising turns the call into a FAILURE with that error
(Celery records the same after the fact), so `on_failure` runs for it. `on_failure`,
`on_retry` and `after_return` come after the outcome is decided: one that raises is logged
with its traceback and the outcome stays as it was.

A process-pool child killed at its hard time limit runs no hook; as in Celery, the worker's
main process then calls `on_failure` (with TimeLimitExceeded) and `after_return` for it
(`killed_at_limit`). Thread and solo pools run them in the task's thread, which gets the
TimeLimitExceeded raised in it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import Retry, TimeLimitExceeded
from ..message import Message
from ..signals import ExceptionInfo

if TYPE_CHECKING:
    from ..task import Task
    from .executor import Run

log = logging.getLogger("conveyor.worker")


def succeeded(task: Task, message: Message, run: Run) -> Run:
    """Call `on_success`; if it raises, the run becomes a FAILURE with that error."""
    from .executor import Run, RunKind, RunResult, error_info

    try:
        task.hook("on_success")(run.retval, message.id, list(message.args), message.kwargs)
    except Exception as exc:
        log.error(
            "task %s[%s]: on_success raised %r; the call is recorded as FAILURE",
            task.name,
            message.id,
            exc,
        )
        result = RunResult(
            RunKind.FAILURE, run.result.started_at, time.time(), error=error_info(exc)
        )
        return Run(result, exc)
    return run


def failed(task: Task, message: Message, exc: BaseException) -> None:
    """Call `on_failure(exc, task_id, args, kwargs, einfo)`."""
    _guarded(
        task,
        message,
        "on_failure",
        exc,
        message.id,
        list(message.args),
        message.kwargs,
        ExceptionInfo(exc),
    )


def retrying(task: Task, message: Message, reason: BaseException) -> None:
    """Call `on_retry(exc, task_id, args, kwargs, einfo)`: `exc` is the error the retry was
    asked for (`self.retry(exc=...)`, None when none was given, or the error an
    `autoretry_for` task raised); `einfo` describes the retry itself."""
    exc = reason.exc if isinstance(reason, Retry) else reason
    _guarded(
        task,
        message,
        "on_retry",
        exc,
        message.id,
        list(message.args),
        message.kwargs,
        ExceptionInfo(reason),
    )


def returned(task: Task, message: Message, state: str, retval: Any) -> None:
    """Call `after_return(status, retval, task_id, args, kwargs, einfo)`; `retval` is the
    return value or the exception, and `einfo` is None, as Celery passes it."""
    _guarded(
        task,
        message,
        "after_return",
        state,
        retval,
        message.id,
        list(message.args),
        message.kwargs,
        None,
    )


def killed_at_limit(task: Task, message: Message, error: str) -> None:
    """The hooks of a call whose process was killed at its hard time limit (`error`: the
    TimeLimitExceeded message the pool recorded), run in the worker's main process."""
    exc = TimeLimitExceeded(error)
    failed(task, message, exc)
    returned(task, message, "FAILURE", exc)


def _guarded(task: Task, message: Message, hook: str, *args: Any) -> None:
    try:
        task.hook(hook)(*args)
    except Exception:  # the outcome is decided; a hook's error must not change or hide it
        log.exception(
            "task %s[%s]: %s raised; the call's outcome is unchanged", task.name, message.id, hook
        )
