"""Sending the task signals for one run (executor.py decides which): each function is one
signal with Celery's arguments. `Signal.send` logs and swallows a receiver's exception, so
nothing here can change a call's outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import signals
from ..message import Message
from ..request import Request
from ..signals import ExceptionInfo

if TYPE_CHECKING:
    from ..task import Task


def prerun(task: Task, message: Message) -> None:
    signals.task_prerun.send(
        sender=task, task_id=message.id, task=task, args=message.args, kwargs=message.kwargs
    )


def succeeded(task: Task, value: Any) -> None:
    signals.task_success.send(sender=task, result=value)


def failed(task: Task, message: Message, exc: BaseException) -> None:
    signals.task_failure.send(
        sender=task,
        task_id=message.id,
        exception=exc,
        args=message.args,
        kwargs=message.kwargs,
        traceback=exc.__traceback__,
        einfo=ExceptionInfo(exc),
    )


def retrying(task: Task, request: Request, reason: BaseException) -> None:
    signals.task_retry.send(
        sender=task, request=request, reason=reason, einfo=ExceptionInfo(reason)
    )


def postrun(task: Task, message: Message, retval: Any, state: str) -> None:
    signals.task_postrun.send(
        sender=task,
        task_id=message.id,
        task=task,
        args=message.args,
        kwargs=message.kwargs,
        retval=retval,
        state=state,
    )
