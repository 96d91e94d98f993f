"""The leader lease: of all the schedulers sharing a store, only the holder fires.

Contract. `Leader.check()` renews the lease once a third of it has passed, so a live leader
keeps it through two failed renewals. It counts itself the leader only until its last
successful renewal's *send* time plus the lease length minus a safety margin: the store
granted the lease no earlier than that, so the store's lease never runs out while this side
still thinks it leads — whatever the store's round trip took. A store that cannot be reached
means "not leading" until it answers again.

A follower sleeps until the holder's lease would run out (the store says how long that is), so
when a leader dies another takes over within one lease period; a leader that stops cleanly
resigns, and the others take over at their next check.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass

from ..clock import Clock
from ..errors import ConveyorError
from .stores.base import Leadership, ScheduleStore

log = logging.getLogger("conveyor.beat")

_SAFETY = 0.1  # of the lease: stop firing this much before the store's lease can run out
_FOLLOWER_SLACK = 0.02  # seconds past the holder's expiry before trying to take over


def holder_name() -> str:
    """A name unique to this scheduler: host, pid and a random suffix (a restarted process
    with a reused pid is still a new holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class Standing:
    """The result of one check: whether this scheduler leads now, and how many seconds may
    pass before the next check is needed."""

    leading: bool
    check_in: float


class Leader:
    """Holds (or waits for) the leader lease of one store for one scheduler."""

    def __init__(self, store: ScheduleStore, ttl: float, clock: Clock, holder: str) -> None:
        self.store = store
        self.ttl = ttl
        self.holder = holder
        self._clock = clock
        self._valid_until = 0.0  # local time until which this side may fire
        self._renewed_at = float("-inf")
        self.term = 0
        self.takeovers = 0

    def check(self) -> Standing:
        now = self._clock.now()
        if now < self._valid_until and now - self._renewed_at < self.ttl / 3:
            return Standing(True, self._renewed_at + self.ttl / 3 - now)
        try:
            lease = self.store.lead(self.holder, self.ttl)
        except ConveyorError as exc:
            log.warning("scheduler %s: cannot reach the schedule store: %s", self.holder, exc)
            return Standing(now < self._valid_until, min(1.0, self.ttl / 3))
        return self._after(lease, now)

    def _after(self, lease: Leadership, sent_at: float) -> Standing:
        if lease.held_by(self.holder):
            if not self.leading_at(sent_at) or lease.term != self.term:
                self.takeovers += 1
                log.warning("scheduler %s is now the leader (term %d)", self.holder, lease.term)
            self.term = lease.term
            self._renewed_at = sent_at
            self._valid_until = sent_at + self.ttl * (1 - _SAFETY)
            return Standing(True, self.ttl / 3)
        if self.leading_at(sent_at):
            log.warning("scheduler %s lost the leader lease to %s", self.holder, lease.holder)
        self._valid_until = 0.0
        wait = lease.remaining + _FOLLOWER_SLACK if lease.holder else 0.0
        return Standing(False, min(wait, self.ttl))

    def leading_at(self, now: float) -> bool:
        return now < self._valid_until

    def resign(self) -> None:
        """Give the lease up (a clean stop), so another scheduler need not wait it out."""
        self._valid_until = 0.0
        try:
            self.store.resign(self.holder)
        except ConveyorError as exc:
            log.warning("scheduler %s: could not resign the lease: %s", self.holder, exc)
