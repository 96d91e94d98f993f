"""Celery's `task.map(it)`, `task.starmap(it)` and `task.chunks(it, n)`.

`xmap` and `xstarmap` are signatures of one call (of the builtin `conveyor.map` /
`conveyor.starmap`, see canvas/builtins.py) that runs the task on every item one after another
in a single worker and returns the list of results: a way to make many tiny calls cost one
message, not a parallel operation. `chunks` splits the items into parts of `n` and sends a
group of one `xstarmap` per part: its result is a GroupResult whose `get()` is a list of lists.
The calls go to the mapped task's queue (routed as the task is).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..options import CallOptions
from .builtins import MAP_TASK, STARMAP_TASK
from .nodes import GroupNode, Node
from .signature import Signature, _Sendable, group

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..task import Task
    from .group_result import GroupResult


def xmap(task: Task, it: Iterable[Any]) -> Signature:
    """`[task(item) for item in it]` as one call: `add.map([1, 2])` (Celery's `xmap`)."""
    return _mapped(MAP_TASK, task, [item for item in it])


def xstarmap(task: Task, it: Iterable[Iterable[Any]]) -> Signature:
    """`[task(*item) for item in it]` as one call: `add.starmap([(2, 2), (4, 4)])` (Celery's
    `xstarmap`)."""
    return _mapped(STARMAP_TASK, task, [list(item) for item in it])


def _mapped(builtin: str, task: Task, items: list[Any]) -> Signature:
    queue = task.app.route(task.name, task, CallOptions()).queue
    return Signature(
        builtin, (), {"task": task.name, "it": items}, immutable=True, queue=queue, app=task.app
    )


class chunks(_Sendable["GroupResult"]):  # lower case: Celery's name
    """`task.chunks(it, n)`: the items of `it` (each a tuple of arguments) in parts of `n`,
    one `xstarmap` call per part, sent as a group. `chunks(...)()` / `apply_async()` return
    its GroupResult; `.group()` gives the group itself (to put in a chain or chord)."""

    def __init__(self, task: Task, it: Iterable[Iterable[Any]], n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigurationError(f"chunks(): n is {n!r}; give a whole number, at least 1")
        self.task = task
        self.items = [list(item) for item in it]
        if not self.items:
            raise ConfigurationError("chunks() needs at least one item to call the task with")
        self.n = n
        self.callbacks, self.errbacks = [], []

    def __repr__(self) -> str:
        return f"chunks({self.task.name}, {len(self.items)} items, {self.n})"

    def __call__(self) -> GroupResult:
        """Send it (Celery's `task.chunks(it, n)()`)."""
        return self.apply_async()

    def group(self) -> group:
        """The group of one `xstarmap` call per part of `n` items."""
        parts = iter(self.items)
        calls = []
        while part := list(islice(parts, self.n)):
            calls.append(xstarmap(self.task, part))
        made = group(calls)
        made.callbacks, made.errbacks = list(self.callbacks), list(self.errbacks)
        return made

    def _app(self) -> Conveyor:
        return self.task.app

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Node:
        return self.group()._node(args, kwargs)

    def _result(self, app: Conveyor, node: Node) -> GroupResult:
        from .group_result import GroupResult

        assert isinstance(node, GroupNode)
        return GroupResult.of(app, node)
