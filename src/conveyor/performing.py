"""Performing a task: binding it to its body and marking it running. `bind_run` (a function
task's `run` is the function; a class-based task keeps its own), and `enter_call` /
`leave_call` / `calling_task` (the task whose `__call__` runs in this context, for
`conveyor.current_task`). Kept apart from task.py so the Task class stays about its API.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from types import MethodType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .task import Task

_calling: contextvars.ContextVar[Task | None] = contextvars.ContextVar(
    "conveyor_calling_task", default=None
)


def enter_call(task: Task) -> contextvars.Token[Task | None]:
    """Make `task` the calling task of this context until `leave_call(token)` (nested calls
    restore the outer one). A token pair, not a context manager: it runs for every call."""
    return _calling.set(task)


def leave_call(token: contextvars.Token[Task | None]) -> None:
    _calling.reset(token)


def calling_task() -> Task | None:
    """The task whose `__call__` is running in this context (innermost first), if any."""
    return _calling.get()


def bind_run(task: Task, fn: Callable[..., Any], bind: bool) -> None:
    """Set a function task's `run` to `fn` (given the task first when `bind`); a class-based
    task, whose `fn` is its own `run` method, keeps it."""
    if not is_own_run(task, fn):
        object.__setattr__(task, "run", run_of(task, fn, bind))


def is_own_run(task: Task, fn: Callable[..., Any]) -> bool:
    """Whether `fn` is the task's own `run` method (a class-based task), not a function."""
    return getattr(fn, "__self__", None) is task and getattr(fn, "__name__", "") == "run"


def run_of(task: Task, fn: Callable[..., Any], bind: bool) -> Callable[..., Any]:
    """A function task's `run`: the function, given the task first when `bind`."""
    return MethodType(fn, task) if bind else fn
