"""Building workflows: `task.s(...)`, `task.si(...)`, `signature(name, ...)`, `chain`, `group`,
and `|` between them — Celery's canvas API.

Builders are immutable values: `.set()` and `|` return new ones. Ids are chosen when a workflow
is sent (`apply_async`), for every call in it at once, so the handle returned can wait on any
step, and a step re-sent after a crash reuses its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from ..bounds import check_optional_seconds, check_queue_name
from ..errors import ConfigurationError
from ..message import check_json, new_task_id
from ..options import check_priority
from .flow import send_node
from .nodes import ChainNode, GroupNode, Node, SigNode, result_ids

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..result import AsyncResult
    from ..task import Task
    from .group_result import GroupResult

Canvas = Union["Signature", "chain", "group", "chord"]
R = TypeVar("R")


class _Sendable(Generic[R]):
    """What every builder shares: `|`, `delay` and `apply_async`, which fixes the ids of every
    call (`_node`), sends them, and returns the handle on the result (`_result`)."""

    def __or__(self, other: Canvas) -> chain:
        return chain(self, other)  # type: ignore[arg-type]

    def delay(self, *args: Any, **kwargs: Any) -> R:
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None
    ) -> R:
        """Send it; `args` and `kwargs` are added to the first call(s), before their own."""
        node = self._node(tuple(args or ()), dict(kwargs or {}))
        app = _app_of(self)  # type: ignore[arg-type]
        send_node(app, node)
        return self._result(app, node)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Node:
        raise NotImplementedError

    def _result(self, app: Conveyor, node: Node) -> R:
        raise NotImplementedError


@dataclass(frozen=True)
class Signature(_Sendable["AsyncResult"]):
    """One task call, maybe partial: `add.s(2)` is `add(<previous result>, 2)` inside a chain;
    `add.si(2, 2)` ignores the previous result. Send it with `delay()` / `apply_async()`."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False
    queue: str | None = None
    priority: int | None = None
    countdown: float | None = None
    app: Conveyor | None = field(default=None, compare=False, repr=False)
    headers: Mapping[str, Any] = field(default_factory=dict)  # the call's own (request.headers)

    def set(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        immutable: bool | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Signature:
        """A copy with these call options; `headers` replaces the call's own headers (they
        reach the task as `self.request.headers`)."""
        if priority is not None:
            check_priority(priority)
        if queue is not None:
            check_queue_name(queue)
        check_optional_seconds("countdown", countdown, zero=True)
        if headers is not None:
            headers = dict(headers)
            check_json(headers, "headers")
        return replace(
            self,
            queue=queue if queue is not None else self.queue,
            priority=priority if priority is not None else self.priority,
            countdown=countdown if countdown is not None else self.countdown,
            immutable=immutable if immutable is not None else self.immutable,
            headers=headers if headers is not None else self.headers,
        )

    def _result(self, app: Conveyor, node: Node) -> AsyncResult:
        from ..result import AsyncResult

        return AsyncResult(result_ids(node)[0], app)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> SigNode:
        return SigNode(
            task=self.task,
            id=new_task_id(),
            args=(*args, *self.args),
            kwargs={**self.kwargs, **(kwargs or {})},
            immutable=self.immutable,
            queue=self.queue,
            priority=self.priority,
            countdown=self.countdown,
            headers=dict(self.headers),
        )


def signature(
    task: str | Task,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    immutable: bool = False,
    queue: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    app: Conveyor | None = None,
) -> Signature:
    """A signature by task or task name (`signature("proj.add", (2, 2))`)."""
    name = task if isinstance(task, str) else task.name
    owner = app if app is not None or isinstance(task, str) else task.app
    return Signature(
        name, tuple(args), dict(kwargs or {}), immutable, queue, priority, countdown, app=owner
    )


class chain(_Sendable["AsyncResult | GroupResult"]):  # lower case: Celery's name
    """Steps run one after another, each getting the previous result prepended to its
    arguments: `chain(fetch.s(url), parse.s(), store.s())` or `fetch.s(url) | parse.s()`.

    `apply_async()` returns the AsyncResult of the last step (a GroupResult when the last step
    is a group): `.get()` gives the final result. When a step fails, the chain stops and every
    later step's result is FAILURE with that error, naming the step that failed."""

    def __init__(self, *steps: Canvas | Iterable[Canvas]) -> None:
        flat: list[Canvas] = []
        for step in _items(steps):
            flat += step.steps if isinstance(step, chain) else [step]
        if not flat:
            raise ConfigurationError("chain() needs at least one step")
        self.steps: tuple[Canvas, ...] = tuple(flat)

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)

    def _result(self, app: Conveyor, node: Node) -> AsyncResult | GroupResult:
        return _handle(app, node)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> ChainNode:
        first, *rest = self.steps
        return ChainNode(steps=(_node_of(first, args, kwargs), *(_node_of(s) for s in rest)))


class group(_Sendable["GroupResult"]):  # lower case: Celery's name
    """Members run in parallel: `group(resize.s(f) for f in files)`. `apply_async()` returns a
    GroupResult whose `get()` is the list of results in member order."""

    def __init__(self, *members: Canvas | Iterable[Canvas]) -> None:
        self.members: tuple[Canvas, ...] = tuple(_items(members))
        if not self.members:
            raise ConfigurationError("group() needs at least one member")

    def __repr__(self) -> str:
        return f"group({', '.join(repr(m) for m in self.members)})"

    def _result(self, app: Conveyor, node: Node) -> GroupResult:
        from .group_result import GroupResult

        assert isinstance(node, GroupNode)
        return GroupResult.of(app, node)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> GroupNode:
        return GroupNode(
            id=new_task_id(), members=tuple(_node_of(m, args, kwargs) for m in self.members)
        )


class chord(_Sendable["AsyncResult | GroupResult"]):  # lower case: Celery's name
    """A group, then one body called with the list of the group's results once every member
    succeeded: `chord(fetch.s(u) for u in urls)(merge.s())` or `chord(header, body)`.

    The body runs once, even when header members are delivered again after a crash (their
    joins are counted once each, and the body's id is fixed). When a member fails for good, the
    body does not run and its result is FAILURE with that member's error.
    `chain(group(...), task.s())` is the same chord, as in Celery."""

    def __init__(self, header: group | Iterable[Canvas], body: Canvas | None = None) -> None:
        self.header = header if isinstance(header, group) else group(header)
        self.body = body

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def __call__(self, body: Canvas) -> AsyncResult | GroupResult:
        return chord(self.header, body).apply_async()

    def _result(self, app: Conveyor, node: Node) -> AsyncResult | GroupResult:
        return _handle(app, node)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> ChainNode:
        if self.body is None:
            raise ConfigurationError(
                "this chord has no body: chord(header, body) or chord(header)(body)"
            )
        return ChainNode(steps=(self.header._node(args, kwargs), _node_of(self.body)))


def _node_of(
    item: Canvas, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> Node:
    if not isinstance(item, Signature | chain | group | chord):
        raise ConfigurationError(
            f"{item!r} is not a signature, chain or group: use task.s(...) to make one"
        )
    return item._node(args, kwargs)


def _items(given: tuple[Canvas | Iterable[Canvas], ...]) -> list[Canvas]:
    """Celery accepts both `group(a, b)` and `group([a, b])` / a generator."""
    if len(given) == 1 and not isinstance(given[0], Signature | chain | group | chord):
        return list(given[0])
    return list(given)  # type: ignore[arg-type]


def _app_of(item: Canvas) -> Conveyor:
    if isinstance(item, Signature):
        if item.app is not None:
            return item.app
        from ..app import current_app

        return current_app()
    if isinstance(item, chord):
        return _app_of(item.header)
    parts = item.steps if isinstance(item, chain) else item.members
    return _app_of(parts[0])


def _handle(app: Conveyor, node: Node) -> AsyncResult | GroupResult:
    """The handle on a node's result: a chain's is its last step's."""
    from ..result import AsyncResult
    from .group_result import GroupResult

    if isinstance(node, ChainNode):
        return _handle(app, node.steps[-1])
    if isinstance(node, GroupNode):
        return GroupResult.of(app, node)
    return AsyncResult(node.id, app)
