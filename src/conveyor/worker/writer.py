"""The worker's writes, batched: outcomes, forgets, acks, then releases and dead letters.

A `Plan` is what settling one batch of deliveries needs. The `Writer` applies plans in the
order they were made; once started it does so on a thread of its own, merging every plan that
is waiting into one — one `put` and one `ack` for all of them — so a worker running many tiny
tasks pays a round trip per batch, not per task, and its run loop never waits on the network.

Order, which at-least-once delivery depends on, is kept across a merge: every outcome is
written before any ack or release of the merged plans (an outcome is stored before its
message is settled), outcomes keep their order (a STARTED before the SUCCESS of the same
call), and releases and dead letters keep theirs. Not started (tests driving `step()`), a
writer applies each plan at once, in the caller's thread.

One bad write must not poison a batch. When a merged plan is refused for good — any error but
an outage (`OUTAGES`: `BackendUnavailable`, a locked or full SQLite file) — the writer applies
the plans merged into it (`parts`) one by one, except those the refused attempt already
acknowledged whole (it was refused at a later write), and a plan of one call still refused is
replaced by its `fallback` (the settler's: the call ends FAILURE naming the store's reason, or
is dead-lettered with it). Applying a plan again is safe: outcomes are fenced by token,
follow-ups are idempotent by id, and a second ack or release of a settled lease is refused by
the broker and changes nothing. An outage is not a verdict on the writes: it propagates, the
leases run out and the calls are delivered again.

Back-pressure: while `BACKLOG_LIMIT` plans wait to be written (the store is down or slow, and
its guard waits for it), `wait_for_room` tells the slot groups to reserve nothing more. Calls
that ran but are not written yet hold no renewed lease, so without this a worker whose result
store stopped taking writes would keep running calls whose leases then run out, and each
would run again elsewhere: the limit bounds what an outage can make run twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..brokers.base import Broker, Lease
from ..errors import OUTAGES
from ..results.base import Outcome, ResultStore, storable_text
from ..states import TaskState
from .fencing import live_only

log = logging.getLogger("conveyor.worker")

#: Plans submitted and not yet written past which the worker stops reserving.
BACKLOG_LIMIT = 64


@dataclass
class Plan:
    """puts, forgets, acks and after as the module docstring says; `followups` run after the
    puts and before the acks, each with the lease it belongs to: a followup that fails keeps
    its message unacknowledged, so it is delivered again (and its followup retried).

    `parts` are the plans merged into this one, in order (none for a plan of one call);
    `fallback` gives, from the error that refused this plan, what to write instead."""

    puts: list[Outcome] = field(default_factory=list)
    forgets: list[str] = field(default_factory=list)
    acks: list[Lease] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    followups: list[tuple[Lease, Callable[[], None]]] = field(default_factory=list)
    parts: list[Plan] = field(default_factory=list)
    fallback: Callable[[Exception], Plan] | None = None

    @classmethod
    def merged(cls, plans: Sequence[Plan]) -> Plan:
        """One plan doing what `plans` do, in order, that remembers them as its parts."""
        if len(plans) == 1:
            return plans[0]
        out = cls(parts=list(plans))
        for plan in plans:
            out.puts += plan.puts
            out.forgets += plan.forgets
            out.acks += plan.acks
            out.after += plan.after
            out.followups += plan.followups
        return out


class Writer:
    """Applies plans (see the module docstring). Thread-safe."""

    def __init__(self, broker: Broker, results: ResultStore) -> None:
        self._broker = broker
        self._results = results
        self._queue: queue.SimpleQueue[Plan | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._waiting = 0  # plans submitted and not yet written
        self._drained = threading.Condition()
        self.held_off = 0  # times wait_for_room found no room (a figure for logs and tests)

    def submit(self, plan: Plan) -> None:
        if self._thread is None:
            self.apply_safely(plan)
        else:
            with self._drained:
                self._waiting += 1
            self._queue.put(plan)

    @property
    def backlog(self) -> int:
        """Plans submitted and not yet written (always 0 while not started)."""
        return self._waiting

    def wait_for_room(self, timeout: float) -> bool:
        """True when fewer than BACKLOG_LIMIT plans wait to be written, waiting up to `timeout`
        seconds for the writer to catch up (see Back-pressure in the module docstring)."""
        with self._drained:
            if self._waiting < BACKLOG_LIMIT:
                return True
            if self.held_off == 0 or self.held_off % 1000 == 0:
                log.warning(
                    "%d settlements wait to be written (is the result store or broker taking "
                    "writes?); reserving nothing more until they are",
                    self._waiting,
                )
            self.held_off += 1
            return self._drained.wait_for(lambda: self._waiting < BACKLOG_LIMIT, timeout)

    def _written(self, count: int) -> None:
        with self._drained:
            self._waiting -= count
            self._drained.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="conveyor-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Apply everything submitted so far, then return to applying plans inline."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def _loop(self) -> None:
        while True:
            plan = self._queue.get()
            if plan is None:
                return
            plans, stop = [plan], False
            while not self._queue.empty():  # merge whatever else is waiting
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                plans.append(more)
            batch = Plan.merged(plans)
            try:
                self.apply_safely(batch)
            except Exception:
                log.exception(
                    "could not settle %d call(s); their leases will expire and they will be "
                    "delivered again",
                    len(batch.acks) + len(batch.after),
                )
            finally:
                self._written(len(plans))
            if stop:
                return

    def apply_safely(self, plan: Plan, again: bool = False) -> None:
        """Apply `plan`; when it is refused for good, its parts one by one, and a part of one
        call by its fallback (see the module docstring). Raises only OUTAGES. `again`: `plan`
        was part of a batch that was refused (and may have been partly applied)."""
        acked: set[Lease] = set()
        try:
            self.apply(plan, again, acked)
        except OUTAGES:
            raise
        except Exception as exc:
            if plan.parts:
                log.warning(
                    "a batch of %d settlements was refused (%s); writing them one by one",
                    len(plan.parts),
                    _described(exc),
                )
                for part in plan.parts:
                    if not _settled(part, acked):
                        self.apply_safely(part, again=True)
            elif plan.fallback is not None:
                log.error("settling a call was refused (%s)", _described(exc))
                self.apply_safely(plan.fallback(exc), again)
            else:
                log.error(
                    "writes dropped, refused by the store or broker (%s): outcome(s) of %s, "
                    "%d other settlement(s)",
                    _described(exc),
                    ", ".join(o.task_id for o in plan.puts) or "none",
                    len(plan.acks) + len(plan.after),
                )

    def apply(self, plan: Plan, again: bool = False, acked: set[Lease] | None = None) -> None:
        """Write `plan` in order (see the module docstring). `acked` collects the leases the
        broker acknowledged, so that if a later write of the plan is refused, the parts they
        settled are not applied again; `again` as for `apply_safely`."""
        plan = live_only(self._broker, plan, again)  # no writes of a lease that ran out
        if plan.puts:
            for outcome, ok in zip(plan.puts, self._results.put(plan.puts), strict=True):
                # A STARTED record is also refused when the task already wrote its own state
                # (update_state, under the same lease): nothing lost, nothing to report.
                if not ok and outcome.state_name != TaskState.STARTED.value:
                    log.warning(
                        "outcome of %s not recorded: lease lost, a newer delivery owns the result",
                        outcome.task_id,
                    )
        if plan.forgets:
            self._results.forget(plan.forgets)
        acks = plan.acks
        for lease, followup in plan.followups:
            try:
                followup()
            except Exception:
                log.exception(
                    "the workflow step after %s could not be sent; the call stays "
                    "unacknowledged and will be delivered again",
                    lease.message_id,
                )
                acks = [a for a in acks if a is not lease]
        if acks:
            for lease, ok in zip(acks, self._broker.ack(acks), strict=True):
                if ok and acked is not None:
                    acked.add(lease)
                elif not ok:
                    log.warning(
                        "ack refused for %s: %s",
                        lease.message_id,
                        "its lease is no longer held (expected if the refused batch it was part "
                        "of acknowledged it)"
                        if again
                        else "lease lost (another worker may run it again)",
                    )
        for step in plan.after:
            step()


def _settled(part: Plan, acked: set[Lease]) -> bool:
    """Whether a refused batch already settled `part` whole: every lease it acknowledges was
    acknowledged, and an acknowledgement comes after the part's outcomes, forgets and
    follow-ups (a part that releases or dead-letters is applied again)."""
    return bool(part.acks) and not part.after and all(lease in acked for lease in part.acks)


def _described(exc: Exception) -> str:
    """An error as log text: the refused data may be in its message, so what a log stream
    cannot encode is escaped (see results/base.py storable_text)."""
    return storable_text(f"{type(exc).__name__}: {exc}")
