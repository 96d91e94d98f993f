"""Building workflows: `task.s(...)`, `task.si(...)`, `signature(name, ...)`, `chain`, `group`,
and `|` between them — Celery's canvas API.

Builders are values: `.set()`, `.clone()` and `|` return new ones; only `link()`,
`link_error()` and `freeze()` change one in place, as Celery's do. Ids are chosen when a
workflow is sent (`apply_async`), for every call in it at once (callbacks and errbacks too),
so the handle returned can wait on any step (`res.parent`, `res.children`), and a step re-sent
after a crash reuses its id. Calling a signature (`sig()`) runs its task inline; calling a
chain, group or chord sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from ..bounds import check_optional_seconds, check_queue_name
from ..errors import ConfigurationError, NotRegistered, WorkflowError
from ..message import Links, check_json, new_task_id
from ..options import check_priority
from .dicts import plain_arguments
from .flow import send_node
from .nodes import (
    ChainNode,
    GroupNode,
    Node,
    SigNode,
    result_ids,
    with_callbacks,
    with_errbacks,
)
from .nodes import (
    immutable as made_immutable,
)

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..result import AsyncResult
    from ..task import Task
    from .group_result import GroupResult
    from .maps import chunks

_SET_OPTIONS = frozenset({"queue", "priority", "countdown", "immutable", "headers", "task_id"})
Canvas = Union["Signature", "chain", "group", "chord", "chunks"]
R = TypeVar("R")


class _Sendable(Generic[R]):
    """What every builder shares: `|`, `delay`, `~`, `link` / `link_error` and `apply_async`,
    which fixes the ids of every call (`_node`), sends them, and returns the handle on the
    result (`_result`)."""

    # Celery's link / link_error options, added to in place by `link()` / `link_error()`.
    callbacks: list[Canvas]
    errbacks: list[Canvas]

    def __or__(self, other: Canvas) -> chain:
        return chain(self, other)  # type: ignore[arg-type]

    def __invert__(self) -> Any:
        """`~sig`: send it and wait for its result (Celery's shortcut for
        `sig.apply_async().get()`)."""
        return self.apply_async().get()  # type: ignore[attr-defined]

    def delay(self, *args: Any, **kwargs: Any) -> R:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        link: Canvas | Sequence[Canvas] | None = None,
        link_error: Canvas | Sequence[Canvas] | None = None,
        **options: Any,
    ) -> R:
        """Send it; `args` and `kwargs` are added to the first call(s), before their own (not
        to immutable ones). `link` / `link_error` add callbacks / errbacks for this send only
        (see `link()`); other options are those of `set()`, for a signature."""
        target = self._with_options(options)
        node = target._node(tuple(args or ()), dict(kwargs or {}))
        node = target._linked(node, _as_list(link), _as_list(link_error))
        app = self._app()
        send_node(app, node)
        return target._result(app, node)

    def link(self, callback: Canvas) -> Canvas:
        """Send `callback` when this succeeds, with its result as the first argument (unless
        the callback is immutable); on a chain, after its last step; on a group, after its
        first member (as Celery does); on a chord, after its body. Adds to this signature in
        place, as Celery's does, and returns `callback`."""
        self.callbacks.append(_checked(callback))
        return callback

    def link_error(self, errback: Canvas) -> Canvas:
        """Send `errback` when this fails for good (see canvas/callbacks.py for the arguments
        it is given); on a chain or group, on each of its calls; on a chord, on its body.
        Adds to this signature in place, as Celery's does, and returns `errback`."""
        self.errbacks.append(_checked(errback))
        return errback

    def on_error(self, errback: Canvas) -> Any:
        """`link_error(errback)`, returning this signature, for chaining
        (`add.s(2, 2).on_error(log_error.s()).delay()`)."""
        self.link_error(errback)
        return self

    def _app(self) -> Conveyor:
        return _app_of(self)  # type: ignore[arg-type]

    def _with_options(self, options: dict[str, Any]) -> _Sendable[R]:
        if options:
            raise TypeError(
                f"apply_async() of a {type(self).__name__} takes args, kwargs, link and "
                f"link_error; {', '.join(sorted(options))} cannot be given here: set options on "
                "its signatures (sig.set(queue=...))"
            )
        return self

    def _linked(self, node: Node, callbacks: list[Canvas], errbacks: list[Canvas]) -> Node:
        """`node` with this builder's callbacks and errbacks, and those given, attached where
        Celery attaches them (see nodes.with_callbacks / with_errbacks)."""
        if not (self.callbacks or callbacks or self.errbacks or errbacks):
            return node  # the common case: nothing to attach, nothing rebuilt
        node = with_callbacks(node, tuple(_node_of(c) for c in (*self.callbacks, *callbacks)))
        return with_errbacks(node, _maker((*self.errbacks, *errbacks)))

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
    callbacks: list[Canvas] = field(default_factory=list)  # link(); lists, added to in place
    errbacks: list[Canvas] = field(default_factory=list)  # link_error()
    task_id: str | None = None  # the id it is sent with (set(task_id=...), freeze()); else new

    @property
    def id(self) -> str | None:
        """The id it will be sent with, once fixed (`freeze()`, `set(task_id=...)`)."""
        return self.task_id

    def freeze(self, _id: str | None = None) -> AsyncResult:
        """Fix the id it will be sent with (in place, as Celery's) and return the handle on
        its result: the handle can be kept or passed on before the call is sent."""
        from ..result import AsyncResult

        if self.task_id is None or _id is not None:
            object.__setattr__(self, "task_id", _check_id(_id) if _id else new_task_id())
        assert self.task_id is not None
        return AsyncResult(self.task_id, _app_of(self))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now, inline, with these arguments put before the signature's
        own (none, when it is immutable): Celery's `sig(...)`. Nothing is sent or stored."""
        if not self.immutable:
            args, kwargs = (*args, *self.args), {**self.kwargs, **kwargs}
        else:
            args, kwargs = self.args, dict(self.kwargs)
        app = _app_of(self)
        task = app.tasks.get(self.task)
        if task is None:
            raise NotRegistered(
                f"{self.task!r} is not registered in this app, so it cannot be called inline: "
                "import the module that defines it, or send it (sig.delay())"
            )
        return task(*args, **kwargs)

    def __repr__(self) -> str:
        """As Celery shows a signature: `proj.tasks.add(4, 2, debug=True)`."""
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task}({', '.join(shown)})"

    @property
    def options(self) -> dict[str, Any]:
        """The call options set on it (Celery's `sig.options`): queue, priority, countdown,
        headers, link, link_error — those that are set."""
        found: dict[str, Any] = {
            k: v
            for k, v in (
                ("queue", self.queue),
                ("priority", self.priority),
                ("countdown", self.countdown),
                ("task_id", self.task_id),
            )
            if v is not None
        }
        for name, value in (
            ("headers", self.headers),
            ("link", self.callbacks),
            ("link_error", self.errbacks),
        ):
            if value:
                found[name] = value if name == "headers" else list(value)
        return found

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A copy, `args` put before its own and `kwargs` merged over its own, with the
        options of `set()` (Celery's `s.clone(args=(4,), kwargs={'debug': True})`)."""
        copy = self.set(**options)
        return replace(
            copy,
            args=(*(args or ()), *self.args),
            kwargs={**self.kwargs, **(kwargs or {})},
            callbacks=copy.callbacks,
            errbacks=copy.errbacks,
        )

    def set(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        immutable: bool | None = None,
        headers: Mapping[str, Any] | None = None,
        task_id: str | None = None,
    ) -> Signature:
        """A copy with these call options; `headers` replaces the call's own headers (they
        reach the task as `self.request.headers`); `task_id` is the id it is sent with (sent
        twice, it is stored once)."""
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
            task_id=_check_id(task_id) if task_id is not None else self.task_id,
            callbacks=list(self.callbacks),  # the copy's link() must not add to this one
            errbacks=list(self.errbacks),
        )

    def _with_options(self, options: dict[str, Any]) -> Signature:
        unknown = sorted(set(options) - _SET_OPTIONS)
        if unknown:
            raise TypeError(
                f"a signature's apply_async() takes the options of set() "
                f"({', '.join(sorted(_SET_OPTIONS))}), link and link_error; not "
                f"{', '.join(unknown)}: send the task itself for those "
                "(task.apply_async(args, kwargs, eta=...))"
            )
        return self.set(**options) if options else self

    def _result(self, app: Conveyor, node: Node) -> AsyncResult:
        from ..result import AsyncResult

        result = AsyncResult(result_ids(node)[0], app)
        if isinstance(node, SigNode) and node.link:
            result.children = children_of(app, node.link)
        return result

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> SigNode:
        if self.immutable:  # as Celery: partial arguments do not reach an immutable call
            args, kwargs = (), None
        args, kwargs = plain_arguments((*args, *self.args), {**self.kwargs, **(kwargs or {})})
        return SigNode(
            task=self.task,
            id=self.task_id or new_task_id(),
            args=args,
            kwargs=kwargs,
            immutable=self.immutable,
            queue=self.queue,
            priority=self.priority,
            countdown=self.countdown,
            headers=dict(self.headers),
        )


def signature(
    task: str | Task | Signature | Mapping[str, Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    immutable: bool = False,
    queue: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    app: Conveyor | None = None,
) -> Signature:
    """A signature by task or task name (`signature("proj.add", (2, 2))`); from a signature's
    dict form (what a task receives when a signature was one of its arguments, see
    canvas/dicts.py), or a copy of a signature, as Celery's `signature(varies)`."""
    if isinstance(task, Signature):
        return task.clone()
    if isinstance(task, Mapping):
        from .dicts import from_dict

        return from_dict(task, app)
    name = task if isinstance(task, str) else task.name
    owner = app if app is not None or isinstance(task, str) else task.app
    return Signature(
        name, tuple(args), dict(kwargs or {}), immutable, queue, priority, countdown, app=owner
    )


subtask = signature  # Celery's older name


def maybe_signature(
    d: Signature | Mapping[str, Any] | None, app: Conveyor | None = None
) -> Signature | None:
    """None stays None; a signature or its dict form becomes a Signature (Celery's
    `maybe_signature`)."""
    if d is None:
        return None
    if isinstance(d, Signature):
        if app is None or d.app is app:
            return d
        return replace(d, app=app, callbacks=list(d.callbacks), errbacks=list(d.errbacks))
    return signature(d, app=app)


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
        self.callbacks, self.errbacks = [], []

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)

    def __call__(self, *args: Any, **kwargs: Any) -> AsyncResult | GroupResult:
        """Send it, as `apply_async(args, kwargs)` (Celery's `chain(...)()`)."""
        return self.apply_async(args, kwargs)

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
        self.callbacks, self.errbacks = [], []

    def __repr__(self) -> str:
        return f"group({', '.join(repr(m) for m in self.members)})"

    def __call__(self, *args: Any) -> GroupResult:
        """Send it, each member given `args` first (Celery's `group(...)()`)."""
        return self.apply_async(args)

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
        self.callbacks, self.errbacks = [], []

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def __call__(self, body: Canvas | None = None) -> AsyncResult | GroupResult:
        """Send it: `chord(header)(body)`, or `chord(header, body)()`. Returns the body's
        result, whose `parent` is the header's GroupResult."""
        if body is None:
            return self.apply_async()
        given = chord(self.header, body)
        given.callbacks, given.errbacks = list(self.callbacks), list(self.errbacks)
        return given.apply_async()

    def _result(self, app: Conveyor, node: Node) -> AsyncResult | GroupResult:
        return _handle(app, node)

    def _node(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> ChainNode:
        if self.body is None:
            raise ConfigurationError(
                "this chord has no body: chord(header, body) or chord(header)(body)"
            )
        return ChainNode(steps=(self.header._node(args, kwargs), _node_of(self.body)))

    def _linked(self, node: Node, callbacks: list[Canvas], errbacks: list[Canvas]) -> Node:
        """A chord's callbacks and errbacks go to its body (a failed header member reaches
        the body's errbacks). With Celery's `task_allow_error_cb_on_chord_header`, each header
        member gets its own immutable copy of the errbacks too, as Celery's."""
        assert isinstance(node, ChainNode)
        if not (self.callbacks or callbacks or self.errbacks or errbacks):
            return node
        header, body = node.steps
        body = with_callbacks(body, tuple(_node_of(c) for c in (*self.callbacks, *callbacks)))
        make = _maker((*self.errbacks, *errbacks))
        body = with_errbacks(body, make)
        if self._app().conf.settings.task_allow_error_cb_on_chord_header:
            header = with_errbacks(header, lambda: tuple(made_immutable(e) for e in make()))
        return ChainNode(steps=(header, body))


def _node_of(
    item: Canvas, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> Node:
    """The node of `item` with fresh ids, its own callbacks and errbacks attached."""
    _checked(item)
    return item._linked(item._node(args, kwargs), [], [])


def links_of(
    link: Canvas | Sequence[Canvas] | None, link_error: Canvas | Sequence[Canvas] | None
) -> Links:
    """What `Task.apply_async(link=..., link_error=...)` sends with its call: the callbacks'
    and errbacks' nodes, their ids fixed now."""
    return Links(
        link=tuple(_node_of(c) for c in _as_list(link)),
        link_error=tuple(_node_of(e) for e in _as_list(link_error)),
    )


def _check_id(task_id: Any) -> str:
    if not isinstance(task_id, str) or not task_id:
        raise ConfigurationError(f"task_id={task_id!r}: give a non-empty string (uuid())")
    return task_id


def _maker(items: tuple[Canvas, ...]) -> Callable[[], tuple[Node, ...]]:
    """What makes the nodes of `items`, with fresh ids each time it is called."""
    return lambda: tuple(_node_of(item) for item in items)


def children_of(app: Conveyor, callbacks: tuple[Node, ...]) -> list[AsyncResult | GroupResult]:
    """The handles on a call's callbacks: Celery's `res.children` on the handle its
    `apply_async(link=...)` returned."""
    return [_handle(app, callback) for callback in callbacks]


def _checked(item: Any) -> Canvas:
    if not isinstance(item, _Sendable):
        raise ConfigurationError(
            f"{item!r} is not a signature, chain or group: use task.s(...) to make one"
        )
    return item  # type: ignore[return-value]


def _as_list(given: Canvas | Sequence[Canvas] | None) -> list[Canvas]:
    """Celery takes one signature or a list of them for link / link_error."""
    if given is None:
        return []
    if isinstance(given, list | tuple):
        return [_checked(g) for g in given]
    return [_checked(given)]


def _items(given: tuple[Canvas | Iterable[Canvas], ...]) -> list[Canvas]:
    """Celery accepts both `group(a, b)` and `group([a, b])` / a generator."""
    if len(given) == 1 and not isinstance(given[0], _Sendable):
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
    if isinstance(item, chain):
        return _app_of(item.steps[0])
    if isinstance(item, group):
        return _app_of(item.members[0])
    return item._app()  # other builders (chunks) know their own


def _handle(app: Conveyor, node: Node) -> AsyncResult | GroupResult:
    """The handle on a node's result: a chain's is its last step's, whose `parent` is the
    step before's (and so on to the first, as Celery's `res.parent`); a chord's is its
    body's, whose `parent` is the header's GroupResult."""
    from ..result import AsyncResult
    from .group_result import GroupResult

    if isinstance(node, ChainNode):
        previous: AsyncResult | GroupResult | None = None
        for step in node.steps:  # a loop, not recursion: chains may have thousands of steps
            current = _handle(app, step)
            if previous is not None:
                _root(current).parent = previous
            previous = current
        if previous is None:
            raise WorkflowError("a chain with no steps has no result")
        return previous
    if isinstance(node, GroupNode):
        return GroupResult.of(app, node)
    return AsyncResult(node.id, app)


def _root(result: AsyncResult | GroupResult) -> AsyncResult | GroupResult:
    """The first handle up `result`'s parents (a nested chain's first step)."""
    while result.parent is not None:
        result = result.parent
    return result
