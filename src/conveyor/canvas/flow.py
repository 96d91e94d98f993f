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

from ..errors import ConfigurationError
from ..options import CallOptions
from ..results.base import ErrorInfo, Outcome
from ..states import TaskState
from .nodes import ChainNode, GroupNode, Node, SigNode, all_ids

if TYPE_CHECKING:
    from ..app import Conveyor


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
    elif isinstance(node, GroupNode):
        if rest:
            raise ConfigurationError(
                "a group followed by more steps is a chord, which is not built yet: run the "
                "group, wait for its GroupResult, then send the next step"
            )
        for member in node.members:
            send_node(app, member, parent)
    else:
        _send_call(app, node, parent, rest)


def _send_call(app: Conveyor, node: SigNode, parent: Parent | None, rest: tuple[Node, ...]) -> None:
    args = node.args if node.immutable or parent is None else (parent.value, *node.args)
    call = CallOptions(
        task_id=node.id, queue=node.queue, priority=node.priority, countdown=node.countdown
    )
    if app.conf.settings.task_always_eager:
        app.publish(node.task, args, dict(node.kwargs), call, app.tasks.get(node.task), rest)
    else:
        app.send_once(node.task, args, dict(node.kwargs), call, rest)


def after_success(app: Conveyor, chain: tuple[Node, ...], value: Any) -> None:
    """A step with `chain` still to come succeeded with `value`: send the next step."""
    if chain:
        send_node(app, chain[0], Parent(value), chain[1:])


def after_failure(
    app: Conveyor, chain: tuple[Node, ...], task_name: str, task_id: str, error: ErrorInfo
) -> None:
    """A step failed for good: every call still to come fails with its error."""
    reason = f"an earlier step of the chain failed: {task_name}[{task_id}]"
    now = app.clock.now()
    outcomes = [
        Outcome(
            task_id=i,
            state=TaskState.FAILURE,
            error=error,
            reason=reason,
            finished_at=now,
        )
        for i in all_ids(chain)
    ]
    if outcomes:
        app.results.put(outcomes)
