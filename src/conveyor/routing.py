"""Routes and queue declarations: where each call goes, checked against the real tasks.

`task_routes` takes Celery's forms — a dict from exact names or glob patterns (`"sii.*"`) to
`{"queue": ..., "priority": ...}`, or a list of such dicts and router callables, checked in
order; the first rule that gives a destination wins. A key written `"re:<regex>"` (or a compiled
`re.Pattern`, as Celery allows) is matched with `re.match`. Everything is parsed when the
setting is written, so a malformed entry fails there, naming the entry.

Where a call goes, first given wins:
  queue:    `apply_async(queue=)` → the task's `queue=` → the first matching route →
            `task_default_queue`. A route giving a `routing_key` and no `queue` names the
            queue its key reaches (conveyor.bindings).
  priority: `apply_async(priority=)` → the task's `priority=` → the route → `task_default_priority`,
            read on the destination queue's scale and mapped onto 0–9 (conveyor.priorities).

`validate` finds the mistakes Celery routes silently forgive: a pattern that matches no task
(so its tasks land on the default queue), and a destination queue that `task_queues` does not
declare.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ._names import did_you_mean
from .bindings import Binding, queue_for_key
from .bounds import check_queue_name
from .errors import ConfigurationError
from .options import check_priority
from .priorities import to_band
from .queues import Exchange, Queue, default_consumed, exchange_name, parse_queues

if TYPE_CHECKING:
    from .config import Settings

__all__ = [  # Queue declarations live in conveyor.queues and stay importable from here
    "CallableRoute",
    "Decision",
    "Destination",
    "Exchange",
    "MatchKind",
    "PatternRoute",
    "Problem",
    "ProblemKind",
    "Queue",
    "RouteTable",
    "Router",
    "Rule",
    "closest_names",
    "default_consumed",
    "parse_destination",
    "parse_queues",
    "parse_routes",
    "suggested_pattern",
    "table_for",
    "undeclared_for_call",
    "undeclared_queue_problems",
    "unmatched_patterns",
]

_DESTINATION_KEYS = frozenset({"queue", "priority", "exchange", "routing_key"})
#: AMQP keys of a route that change nothing in conveyor: the exchange's type is what queues
#: declare (conveyor.bindings), and every message is stored durably (delivery_mode 2).
_AMQP_KEYS = frozenset({"exchange_type", "delivery_mode"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a route sends a call; None leaves the choice to the next rule or the default."""

    queue: str | None = None
    priority: int | None = None
    exchange: str | None = None
    routing_key: str | None = None


class MatchKind(str, Enum):
    EXACT = "exact"
    GLOB = "glob"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class PatternRoute:
    """One `task_routes` key and its destination. `written` is the key as the user wrote it."""

    written: str
    kind: MatchKind
    regex: re.Pattern[str] | None
    destination: Destination

    def matches(self, name: str) -> bool:
        if self.kind is MatchKind.EXACT:
            return name == self.written
        assert self.regex is not None
        return self.regex.match(name) is not None

    @property
    def label(self) -> str:
        return f"task_routes[{self.written!r}]"


Router = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class CallableRoute:
    """A router function, called as Celery calls it: `fn(name, args, kwargs, options,
    task=task)`; it returns None (no opinion), a queue name, or a destination dict."""

    fn: Router

    @property
    def label(self) -> str:
        return f"router {getattr(self.fn, '__qualname__', repr(self.fn))}"

    def destination(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], task: object
    ) -> Destination | None:
        answer = self.fn(name, args, kwargs, {}, task=task)
        return None if answer is None else parse_destination(answer, self.label)


Rule = PatternRoute | CallableRoute


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one call goes and which rule decided the queue (for `conveyor routes`). `error`
    is set when a router raised instead of deciding."""

    queue: str
    priority: int
    source: str
    error: str | None = None


# -- parsing -------------------------------------------------------------------------------
def parse_routes(value: Any) -> tuple[Rule, ...]:
    """Normalise a `task_routes` value; raise ConfigurationError naming a malformed entry."""
    if value is None:
        return ()
    if isinstance(value, Mapping) or callable(value):
        value = [value]
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError(
            f"task_routes must be a dict, a router function or a list of those, got "
            f"{type(value).__name__} {value!r}"
        )
    rules: list[Rule] = []
    for position, entry in enumerate(value):
        rules.extend(_parse_entry(entry, position))
    return tuple(rules)


def _parse_entry(entry: Any, position: int) -> list[Rule]:
    if isinstance(entry, (PatternRoute, CallableRoute)):
        return [entry]
    if isinstance(entry, Mapping):
        return [_pattern_route(k, v) for k, v in entry.items()]
    if callable(entry):
        return [CallableRoute(entry)]
    if isinstance(entry, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in entry
    ):
        return [_pattern_route(k, v) for k, v in entry]  # Celery's [(pattern, dest), …] form
    hint = "; import the router and list the function itself" if isinstance(entry, str) else ""
    raise ConfigurationError(
        f"task_routes[{position}] is a {type(entry).__name__} ({entry!r}): expected a dict "
        f"of pattern → destination or a router function{hint}"
    )


def _pattern_route(key: Any, value: Any) -> PatternRoute:
    where = f"task_routes[{key!r}]"
    destination = parse_destination(value, where)
    if isinstance(key, re.Pattern):
        return PatternRoute(key.pattern, MatchKind.REGEX, key, destination)
    if not isinstance(key, str) or not key:
        raise ConfigurationError(f"{where}: a route key must be a task name or pattern")
    if key.startswith("re:"):
        try:
            regex = re.compile(key[3:])
        except re.error as exc:
            raise ConfigurationError(f"{where}: the regex does not compile: {exc}") from exc
        return PatternRoute(key, MatchKind.REGEX, regex, destination)
    if _GLOB_CHARS & set(key):
        return PatternRoute(key, MatchKind.GLOB, re.compile(fnmatch.translate(key)), destination)
    return PatternRoute(key, MatchKind.EXACT, None, destination)


def parse_destination(value: Any, where: str) -> Destination:
    """`"queue"`, `{"queue": ..., "priority": ...}` or a Queue → Destination."""
    if isinstance(value, str):
        return Destination(queue=_queue_name(value, where))
    if isinstance(value, Queue):
        return Destination(queue=value.name)
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{where}: a destination is a dict like {{'queue': 'low'}} or a queue name, got "
            f"{type(value).__name__} {value!r}"
        )
    for key in value:
        if key not in _DESTINATION_KEYS | _AMQP_KEYS:
            raise ConfigurationError(
                f"{where}: unknown key {key!r}{did_you_mean(str(key), _DESTINATION_KEYS)}; a "
                "route sets 'queue' and/or 'priority' (or a 'routing_key', with an 'exchange')"
            )
    queue = value.get("queue")
    named = getattr(queue, "name", None)  # a conveyor or kombu Queue
    queue = named if isinstance(named, str) else queue
    priority = value.get("priority")
    try:
        return Destination(
            queue=None if queue is None else _queue_name(queue, where),
            priority=None if priority is None else check_priority(priority),
            exchange=exchange_name(value.get("exchange"), where),
            routing_key=None
            if value.get("routing_key") is None
            else _queue_name(value["routing_key"], f"{where} routing_key"),
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _queue_name(value: Any, where: str) -> str:
    return check_queue_name(value, where)


# -- deciding ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RouteTable:
    """The parsed routing settings of one app. Pure: no I/O."""

    rules: tuple[Rule, ...]
    declared: frozenset[str] | None
    default_queue: str
    default_priority: int | None
    bindings: tuple[Binding, ...] = ()  # the declared queues as Celery binds them
    max_priority: int | None = None  # task_queue_max_priority: the scale of every queue
    queue_max_priority: Mapping[str, int] = field(default_factory=dict)  # Queue(max_priority=)
    _memo: dict[str, tuple[Destination, str]] = field(default_factory=dict, compare=False)

    def decide(
        self,
        name: str,
        task_queue: str | None = None,
        task_priority: int | None = None,
        call_queue: str | None = None,
        call_priority: int | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        task: object = None,
    ) -> Decision:
        """Where a call goes (see the module docstring for the order)."""
        route, source = Destination(), ""
        if (call_queue is None and task_queue is None) or (
            call_priority is None and task_priority is None
        ):
            route, source = self.route_for(name, args, kwargs or {}, task)
        if call_queue is not None:
            queue, source = call_queue, "call"
        elif task_queue is not None:
            queue, source = task_queue, "task option"
        else:
            routed = self._queue_of(route, source)
            queue = routed or self.default_queue
            source = source if routed else "task_default_queue"
        priority = _first(call_priority, task_priority, route.priority, self.default_priority)
        return Decision(queue, self.band(priority, queue), source)

    def _queue_of(self, route: Destination, source: str) -> str | None:
        if route.queue is not None or route.routing_key is None:
            return route.queue
        return self.queue_for_key(route.routing_key, route.exchange, source)

    def queue_for_key(self, routing_key: str, exchange: str | None, where: str) -> str:
        """The queue a call published with `routing_key` (to `exchange`) lands in, as Celery's
        bindings of the declared queues decide (conveyor.bindings)."""
        return queue_for_key(self.bindings, routing_key, exchange, where)

    def band(self, priority: int, queue: str) -> int:
        """conveyor's 0–9 band of `priority`, read on `queue`'s scale (conveyor.priorities)."""
        return to_band(priority, self.queue_max_priority.get(queue, self.max_priority), queue)

    def route_for(
        self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], task: object
    ) -> tuple[Destination, str]:
        """The destination of the first rule that gives one for `name` (as in Celery, the
        first match wins whole), and that rule's label. Pattern-only tables are memoized per
        name: a hot producer pays the pattern scan once per task."""
        cached = self._memo.get(name)
        if cached is not None:
            return cached
        answer: tuple[Destination, str] = (Destination(), "task_default_queue")
        for rule in self.rules:
            if isinstance(rule, PatternRoute):
                found = rule.destination if rule.matches(name) else None
            else:
                found = rule.destination(name, args, kwargs, task)
            if found is not None:
                answer = (found, rule.label)
                break
        if self.memoizable:
            self._memo[name] = answer
        return answer

    @property
    def depends_on_args(self) -> bool:
        """Whether a router function may send calls of one task to different places."""
        return not self.memoizable

    @property
    def memoizable(self) -> bool:
        return all(isinstance(r, PatternRoute) for r in self.rules)

    def undeclared(self, queue: str) -> bool:
        return self.declared is not None and queue not in self.declared


def table_for(settings: Settings) -> RouteTable:
    """The route table of an app's settings."""
    declared = settings.task_queues
    default_exchange = settings.task_default_exchange or settings.task_default_queue
    exchange_type = settings.task_default_exchange_type
    return RouteTable(
        rules=settings.task_routes,
        declared=None if declared is None else frozenset(q.name for q in declared),
        default_queue=settings.task_default_queue,
        default_priority=settings.task_default_priority,
        bindings=tuple(q.binding(default_exchange, exchange_type) for q in declared or ()),
        max_priority=settings.task_queue_max_priority,
        queue_max_priority={
            q.name: q.max_priority for q in declared or () if q.max_priority is not None
        },
    )


def _first(*values: int | None) -> int:
    return next((v for v in values if v is not None), 0)


# -- validation ----------------------------------------------------------------------------
class ProblemKind(str, Enum):
    UNMATCHED_PATTERN = "unmatched pattern"
    UNDECLARED_QUEUE = "undeclared queue"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    message: str


def unmatched_patterns(
    table: RouteTable, names: Collection[str], published: Callable[[], Collection[str]]
) -> list[Problem]:
    """Patterns matching none of `names`; `published` (asked only if needed) adds task names
    that running workers registered."""
    unmatched = [
        r for r in table.rules if isinstance(r, PatternRoute) and not any(map(r.matches, names))
    ]
    if unmatched:
        others = set(published()) - set(names)
        unmatched = [r for r in unmatched if not any(map(r.matches, others))]
    return [Problem(ProblemKind.UNMATCHED_PATTERN, _unmatched_message(r, names)) for r in unmatched]


def _unmatched_message(rule: PatternRoute, names: Collection[str]) -> str:
    where = rule.destination.queue or "its destination"
    text = (
        f"task_routes pattern {rule.written!r} matches no registered task, so the tasks meant "
        f"for {where!r} go elsewhere."
    )
    fix = suggested_pattern(rule.written, names)
    if fix:
        text += f" Did you mean {fix!r}?"
    closest = closest_names(rule.written, names)
    if closest:
        text += f" Closest registered tasks: {', '.join(closest)}."
    return text


def closest_names(pattern: str, names: Iterable[str], n: int = 3) -> list[str]:
    """The registered names most like `pattern` (wildcards dropped), best first: string
    likeness plus a bonus for shared dotted segments."""
    literal = pattern.removeprefix("re:").replace("*", "").replace("?", "").strip(".")
    segments = set(filter(None, re.split(r"[.:]", literal)))

    def score(name: str) -> float:
        parts = name.split(".")
        shared = sum(1 for p in parts if p in segments) / len(parts)
        return difflib.SequenceMatcher(None, literal, name).ratio() + shared

    ranked = sorted(names, key=lambda name: (-score(name), name))
    return [name for name in ranked[:n] if score(name) > 0.2]


def suggested_pattern(pattern: str, names: Collection[str]) -> str | None:
    """A `prefix.*` glob that would match registered tasks, built from a segment of the
    pattern (the seed's `app.….sii.sii_tasks.*` → `sii.*`), or None."""
    literal = pattern.removeprefix("re:")
    for segment in reversed([s for s in re.split(r"[.:]", literal) if s and "*" not in s]):
        prefix = segment + "."
        if any(name.startswith(prefix) for name in names):
            return prefix + "*"
    return None


def undeclared_queue_problems(
    table: RouteTable, decisions: Mapping[str, Decision]
) -> list[Problem]:
    """Destinations `task_queues` does not declare: each route's target, and the queue each
    task lands on through its own option, a router or the default (one problem per queue and
    source, naming the tasks)."""
    if table.declared is None:
        return []
    problems = [
        _undeclared(rule.destination.queue, f"task_routes[{rule.written!r}] sends to", table)
        for rule in table.rules
        if isinstance(rule, PatternRoute)
        and rule.destination.queue is not None
        and table.undeclared(rule.destination.queue)
    ]
    by_source: dict[tuple[str, str], list[str]] = {}
    for name, decision in sorted(decisions.items()):
        if table.undeclared(decision.queue) and not decision.source.startswith("task_routes["):
            by_source.setdefault((decision.queue, decision.source), []).append(name)
    for (queue, source), names in by_source.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        problems.append(_undeclared(queue, f"task(s) {shown} go (by {source}) to", table))
    return problems


def undeclared_for_call(table: RouteTable, name: str, decision: Decision) -> Problem:
    """The problem of one call sent to a queue `task_queues` does not declare."""
    return _undeclared(decision.queue, f"a call of {name!r} goes (by {decision.source}) to", table)


def _undeclared(queue: str, what: str, table: RouteTable) -> Problem:
    declared = sorted(table.declared or ())
    return Problem(
        ProblemKind.UNDECLARED_QUEUE,
        f"{what} queue {queue!r}, which task_queues does not declare"
        f"{did_you_mean(queue, declared)}; declared: {', '.join(declared)}",
    )
