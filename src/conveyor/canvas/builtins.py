"""The tasks every app has, as Celery's builtins: `conveyor.map` and `conveyor.starmap` (what
`task.map(it)`, `task.starmap(it)` and `task.chunks(it, n)` send) and `conveyor.errback`
(what calls an errback with Celery's `(request, exc, traceback)`; see canvas/callbacks.py).

Each runs the named task's function inline, in the worker that took the call, so that task
must be registered there. They are registered in every app through `shared_task`, when the
`conveyor` package is imported.
"""

from __future__ import annotations

from typing import Any

from ..app import shared_task
from ..errors import NotRegistered
from ..request import Request
from ..result import rebuild_exception
from ..results.base import ErrorInfo
from ..task import Task
from .callbacks import ERRBACK_TASK

MAP_TASK = "conveyor.map"
STARMAP_TASK = "conveyor.starmap"
BUILTIN_TASKS = frozenset({MAP_TASK, STARMAP_TASK, ERRBACK_TASK})


def _task(owner: Task, name: str) -> Task:
    task = owner.app.tasks.get(name)
    if task is None:
        raise NotRegistered(
            f"{owner.name} calls task {name!r}, which this worker does not have: import the "
            "module that defines it in the worker (the app's include=...)"
        )
    return task


@shared_task(name=MAP_TASK, bind=True)
def xmap_run(self: Task, task: str, it: list[Any]) -> list[Any]:
    """`[task(item) for item in it]`, one after another in this call (Celery's `celery.map`)."""
    fn = _task(self, task)
    return [fn(item) for item in it]


@shared_task(name=STARMAP_TASK, bind=True)
def xstarmap_run(self: Task, task: str, it: list[list[Any]]) -> list[Any]:
    """`[task(*item) for item in it]`, one after another in this call (Celery's
    `celery.starmap`)."""
    fn = _task(self, task)
    return [fn(*item) for item in it]


@shared_task(name=ERRBACK_TASK, bind=True)
def errback_run(
    self: Task, errback: dict[str, Any], request: dict[str, Any], error: dict[str, Any]
) -> Any:
    """Call the errback task `errback` as Celery does: `(request, exc, traceback, *args)` —
    the failed call's request, its exception rebuilt, its traceback text — or only its own
    arguments when it is immutable."""
    fn = _task(self, errback["task"])
    info = ErrorInfo(error["type"], error["message"], error["traceback"], error["module"])
    failed = Request(
        id=request["id"],
        task=request["task"],
        args=tuple(request.get("args", ())),
        kwargs=request.get("kwargs", {}),
        retries=request.get("retries", 0),
        parent_id=request.get("parent_id"),
        root_id=request.get("root_id"),
    )
    given = tuple(errback["args"])
    if not errback["immutable"]:
        given = (failed, rebuild_exception(info), info.traceback, *given)
    return fn(*given, **errback["kwargs"])
