"""Checking an app's routes against its real tasks.

An app is *finalized* the first time it matters — worker start, `conveyor routes`, the first
enqueue: the modules in `include` are imported, then every route is checked. A pattern that
matches no task is an error listing every problem (or, with `task_routes_strict=False`, a logged
warning each), so the seed's "every task silently lands on default" cannot happen. A
destination `task_queues` does not declare is a warning while `task_create_missing_queues` is
True (Celery's default: such a queue is simply used) and an error when it is False (Celery
raises QueueNotFound when sending; conveyor says so earlier). Until the routes pass, each
enqueue checks again and fails again: nothing is sent to the wrong queue meanwhile. A task
registered after that (a lazy import) is checked when it registers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .routing import (
    Decision,
    PatternRoute,
    Problem,
    ProblemKind,
    RouteTable,
    undeclared_for_call,
    undeclared_queue_problems,
    unmatched_patterns,
)

if TYPE_CHECKING:
    from .app import Conveyor
    from .task import Task

log = logging.getLogger("conveyor.routing")


def decision_for(table: RouteTable, task: Task) -> Decision:
    """Where a call of `task` with no call options goes. A router that raises when called
    without arguments is shown as such, not guessed at."""
    opts = task.options
    try:
        return table.decide(task.name, opts.queue, opts.priority, task=task)
    except ConfigurationError:  # a priority off its queue's scale, a routing key reaching two
        raise
    except Exception as exc:  # a router that needs real arguments
        return Decision("", 0, f"a router raised {exc!r} without arguments", error=str(exc))


def decisions(app: Conveyor) -> dict[str, Decision]:
    """Where each registered task goes, by name (but the builtin tasks of canvas, which every
    app has and which are always sent to the queue of the task they call)."""
    from .canvas.builtins import BUILTIN_TASKS

    table = app.route_table
    return {
        name: decision_for(table, task)
        for name, task in sorted(app.tasks.items())
        if name not in BUILTIN_TASKS
    }


def queues_in_use(app: Conveyor) -> set[str]:
    """Every queue the app's configuration names: `task_default_queue`, the `task_queues`
    declared, the destinations of `task_routes` patterns, where each registered task goes, and
    the queues of `beat_schedule` entries."""
    from .scheduler.schedule import parse_beat_schedule

    settings = app.conf.settings
    known = {settings.task_default_queue, *(d.queue for d in decisions(app).values())}
    known |= {q.name for q in settings.task_queues or ()}
    known |= {
        r.destination.queue
        for r in app.route_table.rules
        if isinstance(r, PatternRoute) and r.destination.queue is not None
    }
    known |= {e.queue for e in parse_beat_schedule(settings.beat_schedule) if e.queue}
    known.discard("")  # a router that cannot decide without arguments names none
    return known


def problems(app: Conveyor) -> list[Problem]:
    """Every routing problem of the app as it stands (no side effects but one read of the task
    names workers published, when a pattern matches nothing registered here)."""
    table = app.route_table
    found = unmatched_patterns(table, list(app.tasks), app.published_task_names)
    found += undeclared_queue_problems(table, decisions(app))
    return found


def report(app: Conveyor, found: Iterable[Problem], when: str) -> None:
    """Raise ConfigurationError listing the problems, or log each when routes are not strict."""
    found = list(found)
    if not found:
        return
    settings = app.conf.settings
    if settings.task_create_missing_queues:
        _warn(app, [p for p in found if p.kind is ProblemKind.UNDECLARED_QUEUE], _CREATED)
        found = [p for p in found if p.kind is not ProblemKind.UNDECLARED_QUEUE]
    if not found:
        return
    if not settings.task_routes_strict:
        _warn(app, found, "task_routes_strict=False: continuing")
        return
    lines = "\n".join(f"  - {p.message}" for p in found)
    raise ConfigurationError(
        f"task routing has {len(found)} problem(s) ({when}):\n{lines}\n"
        "Fix the routes (run `conveyor -A <app> routes` to see where every task goes), or set "
        "task_routes_strict=False to log these as warnings while you migrate."
    )


_CREATED = (
    "task_create_missing_queues=True: the queue is used all the same, so run a worker with "
    "-Q naming it; set task_create_missing_queues=False to make this an error"
)


def _warn(app: Conveyor, found: Iterable[Problem], why: str) -> None:
    """Log each problem once per app."""
    for problem in found:
        if problem.message not in app.warned:
            app.warned.add(problem.message)
            log.warning("%s (%s)", problem.message, why)


def check_late_task(app: Conveyor, task: Task) -> None:
    """Check one task registered after finalization."""
    table = app.route_table
    decision = decision_for(table, task)
    if decision.error is None and table.undeclared(decision.queue):
        report(app, [undeclared_for_call(table, task.name, decision)], f"registering {task.name}")


def check_call(app: Conveyor, name: str, decision: Decision) -> None:
    """Check one call's destination (a `queue=` given at call time or by a router)."""
    if app.route_table.undeclared(decision.queue):
        report(app, [undeclared_for_call(app.route_table, name, decision)], f"sending {name}")
