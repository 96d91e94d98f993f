"""Sending workflows and moving them on.

Contract: `send_node` sends every call of a node with the ids fixed in it, so sending a node
twice stores each call once (enqueue is idempotent by id). It checks every call before sending
any: a node that cannot be sent (an unknown task, an empty chain, a chord's header empty or over
`chord_max_size`, arguments a message cannot carry anywhere in it — a chord's body and the
steps after it included) raises and sends nothing. The worker calls `after_success` once the step's
outcome is stored and before the step's message is acknowledged: if it dies in between, the
step is delivered again, runs again (at least once) and re-sends the next step under the same
ids — nothing is lost and nothing is doubled. `after_failure` marks every call still to come
as FAILURE, naming the step that failed, so whoever waits on the workflow's result gets the
error instead of waiting for ever.

Permanent and transient follow-up failures. Only an outage (`OUTAGES` in errors.py: a broker
or store that cannot be reached or cannot take writes now) is transient while moving a
workflow on: it propagates, the step stays unacknowledged and is delivered again, and its
follow-up is retried. Any other error is permanent, since sending again would meet it again:
the next step's task is unknown (a rolling deploy), its message cannot be encoded or is too
large, a chain is empty, a chord's header is out of bounds or its description is missing
(expired or forgotten) or damaged, a stored value cannot be read. `after_success` then fails
every later call (FAILURE, with a `WorkflowError` naming the error and the step) and returns,
so the step is acknowledged and never runs again. (In eager mode the next step runs inline and
its own error reaches the caller, as a task's does.)

Callbacks and errbacks (`link` / `link_error`, see canvas/callbacks.py) are sent from
`after_success` / `after_failure` the same way: under ids fixed when their call was sent, so a
call settled again sends none of them twice.

Chords. The chord's description (`ChordMeta`: header ids, body, rest) is stored under the
chord's id before any member is sent. Each member carries a `ChordJoin` (the header's size,
and what follows the chord when that is small), so joining is an atomic set-add that returns
the count and reads nothing else: only the member completing the set reads the description,
collects the header's results and sends the body. Members of chords sent before `ChordJoin`
existed read the description to learn the size, as they did then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import (
    OUTAGES,
    ChordError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    MessageTooLarge,
    NotRegistered,
    WorkflowError,
)
from ..message import Links, check_nodes, decode_value
from ..options import CallOptions
from ..results.base import CHORD_RECORD, ErrorInfo, Outcome, storable_text
from ..states import TaskState
from .callbacks import send_body_errbacks, send_callbacks, send_errbacks
from .nodes import (
    ChainNode,
    ChordJoin,
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

log = logging.getLogger("conveyor.workflow")

CHORD = CHORD_RECORD  # the pseudo-task name of a stored chord description

#: In eager mode a later step runs inline, inside `after_success`, and its own error (with
#: task_eager_propagates) is the caller's to see; only these are refusals of the follow-up.
_EAGER_PERMANENT = (WorkflowError, NotRegistered, EncodeError, MessageTooLarge, ConfigurationError)


@dataclass(frozen=True, slots=True)
class Parent:
    """The result of the step before (wrapped, because None is a result too)."""

    value: Any


@dataclass
class _Sends:
    """What sending a node comes to, gathered before anything is sent: the chord descriptions
    to store first, then the calls to enqueue (each with its parent's result and what follows)."""

    records: list[Outcome] = field(default_factory=list)
    calls: list[tuple[SigNode, Parent | None, tuple[Node, ...]]] = field(default_factory=list)


def send_node(
    app: Conveyor, node: Node, parent: Parent | None = None, rest: tuple[Node, ...] = ()
) -> None:
    """Send `node`, given the previous step's result (if any); `rest` runs after it. Raises
    NotRegistered (an unknown task) or WorkflowError (see the module docstring) before sending
    anything when some call of it cannot be sent."""
    sends = _Sends()
    _gather(app, node, parent, rest, sends)
    if not app.conf.settings.task_always_eager:  # eager mode refuses unknown tasks itself
        for name in dict.fromkeys(call.task for call, _, _ in sends.calls):
            if name not in app.tasks:
                app.check_task_name(name)
    if sends.records:
        app.results.put(sends.records)
    for call, given, after in sends.calls:
        _send_call(app, call, given, after)


def _gather(
    app: Conveyor, node: Node, parent: Parent | None, rest: tuple[Node, ...], sends: _Sends
) -> None:
    if isinstance(node, ChainNode):
        if not node.steps:
            raise WorkflowError("a chain with no steps cannot be sent (its stored form is damaged)")
        _gather(app, node.steps[0], parent, (*node.steps[1:], *rest), sends)
    elif isinstance(node, GroupNode) and rest:
        _gather_chord(app, node, rest[0], rest[1:], parent, sends)
    elif isinstance(node, GroupNode):
        for member in node.members:
            _gather(app, member, parent, (), sends)
    else:
        sends.calls.append((node, parent, rest))


def _gather_chord(
    app: Conveyor,
    header: GroupNode,
    body: Node,
    rest: tuple[Node, ...],
    parent: Parent | None,
    sends: _Sends,
) -> None:
    """A group followed by a step is a chord (Celery upgrades it the same way): the header's
    members join the chord when they succeed, and the one completing it sends the body. The
    chord's description is stored first, under the group's id, so that it is there however
    fast a member finishes."""
    ids = tuple(result_ids(header))
    limit = app.conf.settings.chord_max_size
    if not ids:
        raise WorkflowError(f"chord {header.id} has no header members, so it could never run")
    if len(ids) > limit:
        raise WorkflowError(
            f"chord {header.id}: its header has {len(ids)} members, over the limit of {limit} "
            "(setting chord_max_size); split the work into several chords, or raise "
            "chord_max_size"
        )
    check_nodes((body,), "chord body")  # what the members carry must reach a pool child
    check_nodes(rest, "after the chord")
    meta = ChordMeta(ids=ids, body=body, rest=rest)
    sends.records.append(
        Outcome(header.id, TaskState.SUCCESS, value=msgspec.json.encode(meta), task_name=CHORD)
    )
    join = ChordJoin.of(len(ids), (body, *rest))
    for member in header.members:
        _gather(app, joined(member, header.id, join), parent, (), sends)


def _send_call(app: Conveyor, node: SigNode, parent: Parent | None, rest: tuple[Node, ...]) -> None:
    args = node.args if node.immutable or parent is None else (parent.value, *node.args)
    call = CallOptions(
        task_id=node.id,
        queue=node.queue,
        priority=node.priority,
        countdown=node.countdown,
        headers=node.headers,
    )
    links = Links(rest, node.chord, node.join, node.link, node.link_error)
    if app.conf.settings.task_always_eager:
        app.publish(node.task, args, dict(node.kwargs), call, app.tasks.get(node.task), links)
    else:
        app.send_once(node.task, args, dict(node.kwargs), call, links)


def after_success(
    app: Conveyor, links: Links, task_id: str, value: Any, task_name: str = "a step"
) -> None:
    """Call `task_id` succeeded with `value`: send the next step of its chain, or join its
    chord (and send the body when it completes it). Any error but an outage (`OUTAGES`) is
    permanent: it fails the rest of the workflow, and this returns; an outage raises (see the
    module docstring). Its callbacks (`link`) are sent first (see canvas/callbacks.py)."""
    if links.link:
        send_callbacks(app, links, task_id, value)
    try:
        if links.chain:
            send_node(app, links.chain[0], Parent(value), links.chain[1:])
        if links.chord:
            _join(app, links.chord, task_id, links.join)
    except OUTAGES:
        raise
    except Exception as exc:
        if app.conf.settings.task_always_eager and not isinstance(exc, _EAGER_PERMANENT):
            raise  # a later step ran inline and failed: the caller gets its error
        _workflow_failed(app, links, task_id, task_name, exc)


def _workflow_failed(
    app: Conveyor, links: Links, task_id: str, task_name: str, exc: Exception
) -> None:
    """Fail every call after `task_id` with `exc`, the reason its workflow cannot go on."""
    if isinstance(exc, WorkflowError):
        error = ErrorInfo("WorkflowError", str(exc), module=WorkflowError.__module__)
    else:
        why = f"the next step cannot be sent: {type(exc).__name__}: {exc}"
        error = ErrorInfo("WorkflowError", why, module=WorkflowError.__module__)
    reason = f"the workflow could not go on after {task_name}[{task_id}]: {error.message}"
    log.error("%s; every later step is marked FAILURE", storable_text(reason))
    _fail_after(app, links, error, reason, reason, f"{task_name}[{task_id}]")


def _join(app: Conveyor, chord_id: str, member_id: str, join: ChordJoin | None) -> None:
    size = join.size if join is not None else len(chord_meta(app, chord_id).ids)
    if app.results.join_chord(chord_id, member_id) < size:
        return
    meta = chord_meta(app, chord_id)  # only the member completing the chord reads it
    found = app.results.get_many(list(meta.ids))
    missing = [i for i in meta.ids if i not in found or found[i].state is not TaskState.SUCCESS]
    if missing:
        error = ErrorInfo(
            "ChordError",
            f"chord {chord_id}: the results of {len(missing)} header member(s) are not stored "
            f"(first: {missing[0]}); a chord's header tasks must keep their results "
            "(ignore_result=False) until the body runs",
            module=ChordError.__module__,
        )
        _fail(app, (meta.body, *meta.rest), error, f"chord {chord_id} could not collect its header")
        send_body_errbacks(app, (meta.body,), error)
        return
    limit = app.conf.settings.result_max_size
    try:
        values = [
            decode_value(v, limit) if (v := found[i].value) is not None else None for i in meta.ids
        ]
    except (DecodeError, msgspec.DecodeError) as exc:
        raise WorkflowError(f"chord {chord_id}: a header result cannot be read: {exc}") from exc
    send_node(app, meta.body, Parent(values), meta.rest)


def chord_meta(app: Conveyor, chord_id: str) -> ChordMeta:
    """The stored description of chord `chord_id`; WorkflowError when it is missing."""
    stored = app.results.get(chord_id)
    if stored is None or stored.task_name != CHORD or stored.value is None:
        raise WorkflowError(
            f"chord {chord_id}: its description is not in the result store (it expired after "
            "result_expires, or was forgotten), so its body cannot run"
        )
    try:
        return msgspec.json.decode(stored.value, type=ChordMeta)
    except msgspec.DecodeError as exc:
        raise WorkflowError(f"chord {chord_id}: its stored description is damaged: {exc}") from exc


def after_failure(
    app: Conveyor, links: Links, task_name: str, task_id: str, error: ErrorInfo
) -> None:
    """Call `task_id` failed for good: every call still to come in its chain fails with its
    error, and so does the body of its chord (and of any chord a later step belonged to). Only
    an outage raises (see `_fail_after`). Its errbacks (`link_error`) are sent first (see
    canvas/callbacks.py)."""
    if links.link_error:
        send_errbacks(app, links, task_name, task_id, error)
    step = f"{task_name}[{task_id}]"
    _fail_after(
        app,
        links,
        error,
        f"an earlier step of the chain failed: {step}",
        f"a member of the chord's header failed: {step}",
        step,
        chord_error(task_id, error) if links.chord else None,
    )


def chord_error(member_id: str, error: ErrorInfo) -> ErrorInfo:
    """What the body of a chord whose header member `member_id` failed with `error` fails
    with: Celery's `ChordError: Dependency <id> raised ValueError('…')`."""
    return ErrorInfo(
        ChordError.__name__,
        f"Dependency {member_id} raised {error.type}({error.message!r})",
        error.traceback,
        module=ChordError.__module__,
    )


def _fail_after(
    app: Conveyor,
    links: Links,
    error: ErrorInfo,
    chain_reason: str,
    chord_reason: str,
    step: str,
    own_chord_error: ErrorInfo | None = None,
) -> None:
    """Mark FAILURE every call after `step` (what follows the step's own chord with
    `own_chord_error`, when given). Only an outage raises: any other error here would meet the
    step again if it were delivered again, so it is logged (those calls read PENDING) and the
    step is acknowledged all the same."""
    try:
        _mark_after(app, links, error, chain_reason, chord_reason, own_chord_error)
    except OUTAGES:
        raise
    except Exception:
        log.exception("the calls after %s could not be marked FAILURE; they read PENDING", step)


def _mark_after(
    app: Conveyor,
    links: Links,
    error: ErrorInfo,
    chain_reason: str,
    chord_reason: str,
    own_chord_error: ErrorInfo | None = None,
) -> None:
    """Mark FAILURE every call after a step: the rest of its chain, and what follows every
    chord the step or a later call is a member of. What follows a chord comes from its members'
    `ChordJoin` when they carry it, else from its description; a chord whose description is
    gone as well cannot be marked, and is logged. When the step's own chord fails, its body's
    errbacks are sent (as Celery does; a chord later in the chain never started)."""
    _fail(app, links.chain, error, chain_reason)
    chords = chords_in(links.chain)
    if links.chord:
        chords[links.chord] = links.join or chords.get(links.chord)
    for chord_id, join in chords.items():
        own = chord_id == links.chord  # the step's own chord failed (not one never started)
        failed_with = own_chord_error if own and own_chord_error is not None else error
        if join is not None and join.then is not None:
            _fail(app, join.then, failed_with, chord_reason)
            if own:  # its body's errbacks, as Celery sends them
                send_body_errbacks(app, join.then, failed_with)
            continue
        try:
            meta = chord_meta(app, chord_id)
        except WorkflowError as exc:
            log.error(
                "%s; the calls after chord %s cannot be marked failed",
                storable_text(str(exc)),
                chord_id,
            )
            continue
        _fail(app, (meta.body, *meta.rest), failed_with, chord_reason)
        if own:
            send_body_errbacks(app, (meta.body,), failed_with)


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
