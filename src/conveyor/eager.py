"""Eager mode (`task_always_eager`): calls run inline in the caller, for tests and scripts.

The call is executed by the same executor a worker uses and its outcome is written to the app's
result store, so `AsyncResult.get()` behaves as with a worker. Retries run again at once
(their countdown is not waited out), as in Celery. With `task_eager_propagates`, a failure is
raised from `apply_async` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from .canvas.flow import after_failure, after_success
from .errors import NotRegistered
from .message import Message, decode_value, encode_arguments
from .request import request_for
from .result import AsyncResult, rebuild_exception
from .results.base import Outcome
from .states import TaskState
from .worker.executor import RunKind, execute

if TYPE_CHECKING:
    from .app import Conveyor


def run_eagerly(app: Conveyor, message: Message) -> AsyncResult:
    task = app.tasks.get(message.task)
    if task is None:
        raise NotRegistered(f"eager mode cannot run unregistered task {message.task!r}")
    attempt = 0
    while True:
        attempt += 1
        request = request_for(message, "eager", attempt, is_eager=True)
        result = execute(task, message, request)
        if result.kind is not RunKind.RETRY:
            break
        message = msgspec.structs.replace(message, retries=result.retries)
    state = {
        RunKind.SUCCESS: TaskState.SUCCESS,
        RunKind.FAILURE: TaskState.FAILURE,
        RunKind.REJECT: TaskState.FAILURE,
    }.get(result.kind)
    ignore = message.ignore_result
    if ignore is None:
        ignore = task.options.ignore_result
    if ignore is None:
        ignore = app.conf.settings.task_ignore_result
    if state is not None and not ignore:
        app.results.put(
            [
                Outcome(
                    task_id=message.id,
                    state=state,
                    value=result.value,
                    error=result.error,
                    task_name=message.shown_name,
                    worker="eager",
                    attempt=attempt,
                    retries=message.retries,
                    started_at=result.started_at,
                    finished_at=result.finished_at,
                    arguments=encode_arguments(message)
                    if app.conf.settings.result_extended
                    else None,
                )
            ]
        )
    links = message.links
    if links and state is TaskState.SUCCESS:
        limit = app.conf.settings.result_max_size
        value = decode_value(result.value, limit) if result.value is not None else None
        after_success(app, links, message.id, value, message.task)
    elif links and state is TaskState.FAILURE and result.error is not None:
        after_failure(app, links, message.task, message.id, result.error)
    if state is TaskState.FAILURE and app.conf.settings.task_eager_propagates and result.error:
        raise rebuild_exception(result.error)
    return AsyncResult(message.id, app)
