"""Workflows in transit: the plain records a message carries to say what runs after it.

A chain travels with its first step's message as the tuple of the steps still to come
(`Message.chain`); when a step succeeds, the worker applies the next one with the result and
hands it the rest. Every step's id is chosen when the workflow is first sent, so re-applying a
step (its parent ran twice after a crash) re-sends the same ids, which the broker stores once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec


class SigNode(msgspec.Struct, frozen=True, tag="sig", omit_defaults=True):
    """One task call. Unless `immutable`, the parent step's result is prepended to `args`."""

    task: str
    id: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    immutable: bool = False
    queue: str | None = None
    priority: int | None = None
    countdown: float | None = None
    chord: str | None = None  # the chord whose header this call's result belongs to
    join: ChordJoin | None = None  # what joining it needs (absent in older messages)
    headers: dict[str, Any] = msgspec.field(default_factory=dict)  # the call's own
    # Celery's link / link_error: sent when this call succeeds (given its result) or fails
    # for good (see canvas/callbacks.py); their ids are fixed here, so they are sent once.
    link: tuple[Node, ...] = ()
    link_error: tuple[Node, ...] = ()


class ChainNode(msgspec.Struct, frozen=True, tag="chain"):
    """Steps run one after another, each given the previous one's result."""

    steps: tuple[Node, ...]


class GroupNode(msgspec.Struct, frozen=True, tag="group"):
    """Members run in parallel; `id` names the group's result."""

    id: str
    members: tuple[Node, ...]


Node = SigNode | ChainNode | GroupNode


class ChordMeta(msgspec.Struct, frozen=True):
    """A chord's description, stored once under the chord's id: the header's result ids in
    order, the body, and the steps after the body. Only the member completing the chord reads
    it (and members of chords sent before `ChordJoin` existed, which carry no size)."""

    ids: tuple[str, ...]
    body: Node
    rest: tuple[Node, ...] = ()


#: The most bytes of encoded body-and-rest a header member carries in its `ChordJoin`.
INLINE_LIMIT = 4096


class ChordJoin(msgspec.Struct, frozen=True, omit_defaults=True):
    """What each header member of a chord carries, so that joining never reads the chord's
    description, whose size grows with the header: how many members complete the chord, and —
    when it encodes to at most INLINE_LIMIT bytes — what runs after it (`then`: the body, then
    the rest), so that a member failing, or the last one finding the description gone, can
    fail those calls. A larger `then` is left out (None) and read from the description."""

    size: int
    then: tuple[Node, ...] | None = None

    @classmethod
    def of(cls, size: int, then: tuple[Node, ...]) -> ChordJoin:
        small = len(msgspec.json.encode(then)) <= INLINE_LIMIT
        return cls(size, then if small else None)


def joined(node: Node, chord_id: str, join: ChordJoin | None = None) -> Node:
    """`node` with its result-producing calls marked as members of chord `chord_id`."""
    if isinstance(node, SigNode):
        return msgspec.structs.replace(node, chord=chord_id, join=join)
    if isinstance(node, ChainNode):
        return ChainNode(steps=(*node.steps[:-1], joined(node.steps[-1], chord_id, join)))
    return GroupNode(id=node.id, members=tuple(joined(m, chord_id, join) for m in node.members))


def with_callbacks(node: Node, callbacks: tuple[Node, ...]) -> Node:
    """`node` with `callbacks` linked where Celery links them: a call's own, a chain's last
    step's, a group's first member's (made immutable, since that member alone cannot pass
    the group's results on)."""
    if not callbacks:
        return node
    if isinstance(node, SigNode):
        return msgspec.structs.replace(node, link=(*node.link, *callbacks))
    if isinstance(node, ChainNode):
        return ChainNode(steps=(*node.steps[:-1], with_callbacks(node.steps[-1], callbacks)))
    first, *rest = node.members
    fixed = tuple(immutable(c) for c in callbacks)
    return GroupNode(id=node.id, members=(with_callbacks(first, fixed), *rest))


def with_errbacks(node: Node, errbacks: Callable[[], tuple[Node, ...]]) -> Node:
    """`node` with errbacks on every call that can fail, as Celery puts them: every step of a
    chain and every member of a group, but not the header of a chord (a group followed by a
    step), whose failure reaches the body's errbacks instead. `errbacks()` makes them with
    fresh ids for each call, so that two members failing each send theirs (Celery clones the
    errback for each)."""
    if isinstance(node, SigNode):
        made = errbacks()
        return msgspec.structs.replace(node, link_error=(*node.link_error, *made)) if made else node
    if isinstance(node, ChainNode):
        last = len(node.steps) - 1
        return ChainNode(
            steps=tuple(
                s if isinstance(s, GroupNode) and i < last else with_errbacks(s, errbacks)
                for i, s in enumerate(node.steps)
            )
        )
    return GroupNode(id=node.id, members=tuple(with_errbacks(m, errbacks) for m in node.members))


def immutable(node: Node) -> Node:
    """`node` ignoring the result it is given: its first call(s) made immutable."""
    if isinstance(node, SigNode):
        return msgspec.structs.replace(node, immutable=True)
    if isinstance(node, ChainNode):
        return ChainNode(steps=(immutable(node.steps[0]), *node.steps[1:]))
    return GroupNode(id=node.id, members=tuple(immutable(m) for m in node.members))


def chords_in(nodes: tuple[Node, ...]) -> dict[str, ChordJoin | None]:
    """The chords that calls inside `nodes` are members of, with what their members carry."""
    out: dict[str, ChordJoin | None] = {}
    for call in all_calls(nodes):
        if call.chord and out.get(call.chord) is None:
            out[call.chord] = call.join
    return out


def result_ids(node: Node) -> list[str]:
    """The ids whose outcomes are the node's result: a signature's own id, a chain's last
    step's, a group's members' (in order)."""
    if isinstance(node, SigNode):
        return [node.id]
    if isinstance(node, ChainNode):
        return result_ids(node.steps[-1])
    return [i for member in node.members for i in result_ids(member)]


def first_calls(node: Node) -> list[SigNode]:
    """The calls that run first in `node`: itself, a chain's first step's, every member's."""
    if isinstance(node, SigNode):
        return [node]
    if isinstance(node, ChainNode):
        return first_calls(node.steps[0]) if node.steps else []
    return [call for member in node.members for call in first_calls(member)]


def all_calls(nodes: tuple[Node, ...]) -> list[SigNode]:
    """Every call inside `nodes` (to mark them failed when the step before them fails)."""
    out: list[SigNode] = []
    for node in nodes:
        if isinstance(node, SigNode):
            out.append(node)
        elif isinstance(node, ChainNode):
            out += all_calls(node.steps)
        else:
            out += all_calls(node.members)
    return out
