"""conveyor: a Python task queue with Celery's API and its traps removed by design."""

from __future__ import annotations

from uuid import uuid4 as _uuid4

from . import canvas as _canvas_package
from . import states
from .app import Conveyor, shared_task
from .canvas import builtins as _builtins  # noqa: F401  (registers conveyor.map & co in every app)
from .canvas.group_result import GroupResult
from .canvas.maps import chunks, xmap, xstarmap
from .canvas.signature import (
    Signature,
    chain,
    chord,
    group,
    maybe_signature,
    signature,
    subtask,
)
from .errors import (
    ConfigurationError,
    ConveyorError,
    DecodeError,
    EncodeError,
    Ignore,
    MaxRetriesExceededError,
    MessageTooLarge,
    NotRegistered,
    Reject,
    RemoteError,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    TimeoutError,
    WorkerLostError,
)
from .local import current_app, current_task
from .request import Request
from .result import AsyncResult
from .routing import Exchange, Queue
from .schedules import crontab
from .states import TaskState
from .task import Task

__version__ = "0.1.0"

# `conveyor.canvas.signature` is the function, as `celery.canvas.signature` is (the import
# system set the package attribute to the submodule; code imports the module by its path).
setattr(_canvas_package, "signature", signature)  # noqa: B010


def uuid() -> str:
    """A new task id (a random UUID as a string), as Celery's `celery.uuid()` gives: for
    `apply_async(task_id=uuid())` when the id must be known before sending."""
    return str(_uuid4())


__all__ = [
    "AsyncResult",
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DecodeError",
    "EncodeError",
    "Exchange",
    "GroupResult",
    "Ignore",
    "MaxRetriesExceededError",
    "MessageTooLarge",
    "NotRegistered",
    "Queue",
    "Reject",
    "RemoteError",
    "Request",
    "Retry",
    "Signature",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskRevokedError",
    "TaskState",
    "TimeLimitExceeded",
    "TimeoutError",
    "WorkerLostError",
    "chain",
    "chord",
    "chunks",
    "crontab",
    "current_app",
    "current_task",
    "group",
    "maybe_signature",
    "shared_task",
    "signature",
    "states",
    "subtask",
    "uuid",
    "xmap",
    "xstarmap",
]
