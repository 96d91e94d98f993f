"""Sending workflows and moving them on.

Contract: `send_node` sends every call of a node with the ids fixed in it, so sending a node
twice stores each call once (enqueue is idempotent by id). The worker calls `after_success`
once the step's outcome is stored and before the step's message is acknowledged: if it dies in
between, the step is delivered again, runs again (at least once) and re-sends the next step
under the same ids — nothing is lost and nothing is doubled. `after_failure` marks every call
still to come as FAILURE, naming the step that failed, so whoever waits on the workflow's
result gets the error instead of waiting for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import ConfigurationError
from ..message import Links, decode_value
from ..options import CallOptions
from ..results.base import CHORD_RECORD, ErrorInfo, Outcome
from ..states import TaskState
from .nodes import (
    ChainNode,
    ChordMeta,
    GroupNode,
    Node,
    SigNode,
    all_calls,
    chords_in,
    joined,
    result_ids,
)

if TYPE_CHECKING:
    from ..app import Conveyor


CHORD = CHORD_RECORD  # the pseudo-task name of a stored chord description


@dataclass(frozen=True, slots=True)
class Parent:
    """The result of the step before (wrapped, because None is a result too)."""

    value: Any


def send_node(
    app: Conveyor, node: Node, parent: Parent | None = None, rest: tuple[Node, ...] = ()
) -> None:
    """Send `node`, given the previous step's result (if any); `rest` runs after it."""
    if isinstance(node, ChainNode):
        send_node(app, node.steps[0], parent, (*node.steps[1:], *rest))
    elif isinstance(node, GroupNode) and rest:
        _send_chord(app, node, rest[0], rest[1:], parent)
    elif isinstance(node, GroupNode):
        for member in node.members:
            send_node(app, member, parent)
    else:
        _send_call(app, node, parent, rest)


def _send_chord(
    app: Conveyor, header: GroupNode, body: Node, rest: tuple[Node, ...], parent: Parent | None
) -> None:
    """A group followed by a step is a chord (Celery upgrades it the same way): the header's
    members join the chord when they succeed, and the one completing it sends the body. The
    chord's description is stored first, under the group's id, so that it is there however
    fast a member finishes."""
    meta = ChordMeta(ids=tuple(result_ids(header)), body=body, rest=rest)
    app.results.put(
        [Outcome(header.id, TaskState.SUCCESS, value=msgspec.json.encode(meta), task_name=CHORD)]
    )
    for member in header.members:
        send_node(app, joined(member, header.id), parent)


def _send_call(app: Conveyor, node: SigNode, parent: Parent | None, rest: tuple[Node, ...]) -> None:
    args = node.args if node.immutable or parent is None else (parent.value, *node.args)
    call = CallOptions(
        task_id=node.id, queue=node.queue, priority=node.priority, countdown=node.countdown
    )
    links = Links(rest, node.chord)
    if app.conf.settings.task_always_eager:
        app.publish(node.task, args, dict(node.kwargs), call, app.tasks.get(node.task), links)
    else:
        app.send_once(node.task, args, dict(node.kwargs), call, links)


def after_success(app: Conveyor, links: Links, task_id: str, value: Any) -> None:
    """Call `task_id` succeeded with `value`: send the next step of its chain, or join its
    chord (and send the body when it completes it)."""
    if links.chain:
        send_node(app, links.chain[0], Parent(value), links.chain[1:])
    if links.chord:
        _join(app, links.chord, task_id)


def _join(app: Conveyor, chord_id: str, member_id: str) -> None:
    meta = chord_meta(app, chord_id)
    if app.results.join_chord(chord_id, member_id) < len(meta.ids):
        return
    found = app.results.get_many(list(meta.ids))
    missing = [i for i in meta.ids if i not in found or found[i].state is not TaskState.SUCCESS]
    if missing:
        error = ErrorInfo(
            "ChordError",
            f"chord {chord_id}: the results of {len(missing)} header member(s) are not stored "
            f"(first: {missing[0]}); a chord's header tasks must keep their results "
            "(ignore_result=False) until the body runs",
            module="conveyor",
        )
        _fail(app, (meta.body, *meta.rest), error, f"chord {chord_id} could not collect its header")
        return
    values = [decode_value(v) if (v := found[i].value) is not None else None for i in meta.ids]
    send_node(app, meta.body, Parent(values), meta.rest)


def chord_meta(app: Conveyor, chord_id: str) -> ChordMeta:
    stored = app.results.get(chord_id)
    if stored is None or stored.task_name != CHORD or stored.value is None:
        raise ConfigurationError(f"chord {chord_id}: its description is not in the result store")
    return msgspec.json.decode(stored.value, type=ChordMeta)


def after_failure(
    app: Conveyor, links: Links, task_name: str, task_id: str, error: ErrorInfo
) -> None:
    """Call `task_id` failed for good: every call still to come in its chain fails with its
    error, and so does the body of its chord (and of any chord a later step belonged to)."""
    reason = f"an earlier step of the chain failed: {task_name}[{task_id}]"
    _fail(app, links.chain, error, reason)
    for chord_id in chords_in(links.chain) | ({links.chord} if links.chord else set()):
        meta = chord_meta(app, chord_id)
        why = f"a member of the chord's header failed: {task_name}[{task_id}]"
        _fail(app, (meta.body, *meta.rest), error, why)


def _fail(app: Conveyor, nodes: tuple[Node, ...], error: ErrorInfo, reason: str) -> None:
    now = app.clock.now()
    outcomes = [
        Outcome(
            task_id=call.id,
            state=TaskState.FAILURE,
            error=error,
            task_name=call.task,
            reason=reason,
            finished_at=now,
        )
        for call in all_calls(nodes)
    ]
    if outcomes:
        app.results.put(outcomes)
