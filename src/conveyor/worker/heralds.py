"""The signals a worker's main process sends about the calls it holds (task_received,
task_revoked, task_rejected, task_unknown), with Celery's arguments. WorkerEvents (emitter.py)
calls these where it emits the matching `task-*` event, so each signal fires exactly where its
event does.

Contract: each returns at once when nothing is connected to its signal (one list check, no
Request built); otherwise it calls the receivers on the caller's thread (a slot group's), and
`Signal.send` logs and swallows a receiver's exception, so a receiver never changes what the
worker does with the call. A receiver that blocks delays that slot group only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import signals
from ..brokers.base import Delivery
from ..errors import MessageRejected, NotRegistered
from ..request import Request, request_for

if TYPE_CHECKING:
    from .settle import Inflight


def request_of(item: Inflight, hostname: str) -> Request:
    """The Request a receiver gets for a held call (`.id`, `.task`, `.args`, `.kwargs`,
    `.hostname`, `.delivery_info`, …), as the task itself would see it."""
    d = item.delivery
    info = {"queue": d.envelope.queue, "priority": d.envelope.priority}
    info = {**info, "redelivered": d.attempt > 1}
    return request_for(item.message, hostname, d.attempt, info, lease_token=d.lease.token)


def received(sender: object, item: Inflight, hostname: str) -> None:
    if signals.task_received.receivers:
        signals.task_received.send(sender=sender, request=request_of(item, hostname))


def revoked(
    tasks: Mapping[str, Any],
    item: Inflight,
    hostname: str,
    *,
    terminated: bool,
    expired: bool,
    signum: int | None,
) -> None:
    """Sender: the task object (or its name, should it be gone from the registry)."""
    if signals.task_revoked.receivers:
        name = item.message.task
        signals.task_revoked.send(
            sender=tasks.get(name, name),
            request=request_of(item, hostname),
            terminated=terminated,
            signum=signum,
            expired=expired,
        )


def refused(sender: object, delivery: Delivery, name: str, reason: str, known: bool) -> None:
    """A delivery the worker dead-letters instead of running: task_unknown when its body names
    a task this worker does not have (`name` set, `known` False), else task_rejected. `message`
    is the Delivery (its `envelope` holds the id, queue and raw body); `exc` says why."""
    if name and not known:
        if signals.task_unknown.receivers:
            signals.task_unknown.send(
                sender=sender,
                name=name,
                id=delivery.envelope.id,
                message=delivery,
                exc=NotRegistered(reason),
            )
    elif signals.task_rejected.receivers:
        signals.task_rejected.send(sender=sender, message=delivery, exc=MessageRejected(reason))
