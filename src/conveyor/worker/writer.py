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
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..brokers.base import Broker, Lease
from ..results.base import Outcome, ResultStore
from .fencing import live_only

log = logging.getLogger("conveyor.worker")


@dataclass
class Plan:
    """puts, forgets, acks and after as the module docstring says; `followups` run after the
    puts and before the acks, each with the lease it belongs to: a followup that fails keeps
    its message unacknowledged, so it is delivered again (and its followup retried)."""

    puts: list[Outcome] = field(default_factory=list)
    forgets: list[str] = field(default_factory=list)
    acks: list[Lease] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    followups: list[tuple[Lease, Callable[[], None]]] = field(default_factory=list)

    def merge(self, other: Plan) -> None:
        self.puts += other.puts
        self.forgets += other.forgets
        self.acks += other.acks
        self.after += other.after
        self.followups += other.followups


class Writer:
    """Applies plans (see the module docstring). Thread-safe."""

    def __init__(self, broker: Broker, results: ResultStore) -> None:
        self._broker = broker
        self._results = results
        self._queue: queue.SimpleQueue[Plan | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, plan: Plan) -> None:
        if self._thread is None:
            self.apply(plan)
        else:
            self._queue.put(plan)

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
            stop = False
            while not self._queue.empty():  # merge whatever else is waiting
                more = self._queue.get_nowait()
                if more is None:
                    stop = True
                    break
                plan.merge(more)
            try:
                self.apply(plan)
            except Exception:
                log.exception(
                    "could not settle %d call(s); their leases will expire and they will be "
                    "delivered again",
                    len(plan.acks) + len(plan.after),
                )
            if stop:
                return

    def apply(self, plan: Plan) -> None:
        plan = live_only(self._broker, plan)  # no outcome of a lease that ran out (fencing.py)
        if plan.puts:
            for outcome, ok in zip(plan.puts, self._results.put(plan.puts), strict=True):
                if not ok:
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
                if not ok:
                    log.warning(
                        "ack refused for %s: lease lost (another worker may run it again)",
                        lease.message_id,
                    )
        for step in plan.after:
            step()
