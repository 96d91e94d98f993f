"""Eager mode (`task_always_eager`): calls run inline in the caller, for tests and scripts.

The call is executed by the same executor a worker uses and its outcome is written to the app's
result store, so `AsyncResult.get()` behaves as with a worker; that store is one of the
process's own unless `task_store_eager_result` is set (see `Conveyor.urls`), as Celery keeps
eager results out of its backend. Retries run again at once
(their countdown is not waited out), as in Celery. With `task_eager_propagates`, a failure is
raised from `apply_async` itself.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .canvas.flow import after_failure, after_success
from .errors import NotRegistered
from .message import Message, decode_value, encode_arguments, new_task_id
from .request import current_request, request_for
from .result import AsyncResult, EagerResult, rebuild_exception
from .results.base import Outcome
from .states import TaskState
from .worker.executor import RunKind, RunResult, execute

if TYPE_CHECKING:
    from .app import Conveyor
    from .task import Task


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
        raise rebuild_exception(result.error, _failure_args(result))
    handle = AsyncResult(message.id, app)
    handle.ignored = bool(ignore)
    return handle


# -- task.apply(): run here, return an EagerResult -----------------------------------------------
#: apply() options that only describe the delivery: shown in `request.delivery_info`, as Celery.
_DELIVERY_OPTIONS = frozenset({"queue", "priority", "exchange", "routing_key"})
_APPLY_REFUSED = {
    "link": "apply() runs one call: chain the next step (chain(a.s(), b.s()).apply_async()) "
    "or use apply_async(link=...)",
    "link_error": "apply() runs one call: use apply_async(link_error=...) with a worker, or "
    "catch the failure from apply(throw=True)",
    "logfile": "conveyor's tasks log through the logging module: configure it instead",
    "loglevel": "conveyor's tasks log through the logging module: configure it instead",
}


def apply_here(
    task: Task,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    task_id: str | None,
    retries: int | None,
    throw: bool | None,
    headers: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> EagerResult:
    """Run `task` in this thread as eager mode does and hold its outcome in an EagerResult
    (nothing is written to the result store except what the task writes itself with
    `update_state`). The return value must be JSON, as for any call, and comes back decoded;
    a failure comes back rebuilt as `AsyncResult.get` rebuilds it. Options: `queue`,
    `priority`, `exchange`, `routing_key` and `ignore_result` are accepted (the first four
    show in `request.delivery_info`); `link`, `link_error`, `logfile` and `loglevel` with a
    value, and anything else, are refused with the reason."""
    delivery = _delivery_info(options)
    app = task.app
    parent = current_request()
    running = parent is not None and not parent.called_directly
    message = Message(
        id=task_id or new_task_id(),
        task=task.name,
        args=tuple(args or ()),
        kwargs=dict(kwargs or {}),
        retries=retries or 0,
        parent_id=parent.id if running and parent else None,
        root_id=(parent.root_id or parent.id) if running and parent else None,
        headers=dict(headers or {}),
    )
    attempt = 0
    while True:
        attempt += 1
        request = request_for(message, socket.gethostname(), attempt, delivery, is_eager=True)
        result = execute(task, message, request)
        if result.kind is not RunKind.RETRY:
            break
        message = msgspec.structs.replace(message, retries=result.retries)
    if throw is None:
        throw = app.conf.settings.task_eager_propagates
    return _eager_result(app, task, message, result, throw)


def _delivery_info(options: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in options.items():
        if name in _APPLY_REFUSED and value is not None:
            raise ValueError(f"apply({name}=...) is not supported: {_APPLY_REFUSED[name]}")
        if name not in _APPLY_REFUSED and name not in _DELIVERY_OPTIONS | {"ignore_result"}:
            raise TypeError(
                f"apply() got an unknown option {name!r}: it takes args, kwargs, task_id, "
                f"retries, throw, headers, {', '.join(sorted(_DELIVERY_OPTIONS))} and "
                "ignore_result"
            )
    info = {name: options.get(name) for name in sorted(_DELIVERY_OPTIONS)}
    return {"is_eager": True, **info}


def _eager_result(
    app: Conveyor, task: Task, message: Message, result: RunResult, throw: bool
) -> EagerResult:
    limit = app.conf.settings.result_max_size
    tb = result.error.traceback if result.error else None
    if result.kind is RunKind.SUCCESS:
        value = decode_value(result.value, limit) if result.value is not None else None
        return EagerResult(message.id, value, TaskState.SUCCESS, name=task.name)
    if result.kind is RunKind.IGNORE:  # Celery reports the call as IGNORED, with no value
        return EagerResult(message.id, None, "IGNORED", name=task.name)
    if result.kind is RunKind.REJECT and result.error:  # as Celery: REJECTED, not raised
        exc = rebuild_exception(result.error)
        return EagerResult(message.id, exc, "REJECTED", traceback=tb, name=task.name)
    exc = (
        rebuild_exception(result.error, _failure_args(result))
        if result.error
        else RuntimeError("task failed")
    )
    if throw:
        raise exc
    return EagerResult(message.id, exc, TaskState.FAILURE, traceback=tb, name=task.name)


def _failure_args(result: RunResult) -> list[Any] | None:
    """The exception's arguments the executor kept beside a FAILURE (see rebuild_exception)."""
    if result.kind is not RunKind.FAILURE or result.value is None:
        return None
    args = decode_value(result.value)
    return args if isinstance(args, list) else None
