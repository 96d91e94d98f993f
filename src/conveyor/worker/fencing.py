"""Fencing outcomes on the broker's clock: just before the writer stores a batch of outcomes,
one `confirm` call asks the broker whether each lease they were run under is still held.

The result store fences writes by token alone: it refuses an outcome older than the one it
holds, but it cannot know that a lease ran out while nobody has written under a newer token
yet. A worker resumed after a pause longer than its lease would then write SUCCESS, and the
next holder of the message STARTED and SUCCESS again over it. Confirming first closes that:
the writes of a lease no longer held — its outcomes, the forget of an ignored call, its ack
and its workflow follow-ups (also those of a call whose outcome is not stored,
`ignore_result`) — are dropped and logged, and the broker delivers the call again (at least
once: it runs again). What stays possible is in docs/guarantees.md (Fencing).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from ..brokers.base import Broker, Lease

if TYPE_CHECKING:
    from .writer import Plan

log = logging.getLogger("conveyor.worker")

_Key = tuple[str, int]  # (message id, fencing token)


def _key(lease: Lease) -> _Key:
    return (lease.message_id, lease.token)


def _checked(plan: Plan) -> list[_Key]:
    """The leases whose writes the broker does not fence itself: those of outcomes (token 0
    marks a write made without a lease, e.g. a workflow record: nothing to confirm), those
    acked with a forget (an ignored call's STARTED record is deleted under its lease), and
    those with workflow follow-ups (the next step sent, or the rest of a workflow failed:
    a call whose outcome is not stored — `ignore_result` — still moves its workflow on). A
    plain ack, release or dead letter needs no confirming: the broker checks its token."""
    forgets = set(plan.forgets)
    keys = [(o.task_id, o.token) for o in plan.puts if o.token]
    keys += [_key(lease) for lease in plan.acks if lease.message_id in forgets]
    keys += [_key(lease) for lease, _ in plan.followups]
    return list(dict.fromkeys(keys))


def live_only(broker: Broker, plan: Plan, again: bool = False) -> Plan:
    """`plan` without the writes of leases the broker no longer holds, at the cost of one
    `confirm` round trip (none when nothing in the plan needs checking). `again`: the plan
    is applied a second time, after a batch it was part of was refused (writer.py), so a
    lease may be gone because that batch acknowledged it — the log says so."""
    keys = _checked(plan)
    if not keys:
        return plan
    held = broker.confirm([Lease(mid, token, 0.0) for mid, token in keys])
    stale = {key for key, ok in zip(keys, held, strict=True) if not ok}
    if not stale:
        return plan
    for mid, token in sorted(stale):
        _report(mid, token, again)
    stale_ids = {mid for mid, _ in stale} - {
        lease.message_id for lease in plan.acks if _key(lease) not in stale
    }
    return dataclasses.replace(
        plan,
        puts=[o for o in plan.puts if (o.task_id, o.token) not in stale],
        forgets=[mid for mid in plan.forgets if mid not in stale_ids],
        acks=[lease for lease in plan.acks if _key(lease) not in stale],
        followups=[(lease, f) for lease, f in plan.followups if _key(lease) not in stale],
    )


def _report(mid: str, token: int, again: bool) -> None:
    if again:
        log.info(
            "%s not settled again: its lease (token %d) is no longer held. Expected when the "
            "refused batch it was part of acknowledged it (its outcome was stored then); "
            "otherwise the lease ran out and the call is delivered and run again",
            mid,
            token,
        )
        return
    log.warning(
        "outcome of %s not recorded: lease lost (token %d is no longer held: it ran out on the "
        "broker's clock, e.g. while this worker was paused), so neither its outcome nor its "
        "workflow's next step is written and the call is delivered and run again; if this "
        "repeats, find what stalls this worker or raise visibility_timeout",
        mid,
        token,
    )
