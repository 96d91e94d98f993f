"""In-process result store: the reference semantics of the result-store contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ..clock import SYSTEM_CLOCK, Clock
from .base import HistoryEntry, HistoryPage, HistoryQuery, Outcome, replaces


class MemoryResultStore:
    """Outcomes in a dict under one condition variable."""

    def __init__(self, ttl: float | None = 86400.0, clock: Clock = SYSTEM_CLOCK) -> None:
        self._ttl = ttl
        self._clock = clock
        self._data: dict[str, tuple[Outcome, float, float]] = {}  # outcome, expires, stored
        self._chords: dict[str, tuple[set[str], float]] = {}
        self._cond = threading.Condition()

    def _expires(self) -> float:
        return float("inf") if self._ttl is None else self._clock.now() + self._ttl

    def put(self, outcomes: Sequence[Outcome]) -> list[bool]:
        with self._cond:
            expires, now = self._expires(), self._clock.now()
            stored = []
            for outcome in outcomes:
                old = self._live(outcome.task_id)
                fresh = old is None or replaces(outcome, old)
                if fresh:
                    self._data[outcome.task_id] = (outcome, expires, now)
                stored.append(fresh)
            self._cond.notify_all()
            return stored

    def _live(self, task_id: str) -> Outcome | None:
        entry = self._data.get(task_id)
        if entry is None or entry[1] <= self._clock.now():
            return None
        return entry[0]

    def get(self, task_id: str) -> Outcome | None:
        with self._cond:
            return self._live(task_id)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        with self._cond:
            found = {tid: self._live(tid) for tid in task_ids}
            return {tid: o for tid, o in found.items() if o is not None}

    def wait(self, task_ids: Sequence[str], timeout: float | None) -> dict[str, Outcome]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                ready = {
                    tid: o
                    for tid in task_ids
                    if (o := self._live(tid)) is not None and o.state.ready
                }
                if len(ready) == len(set(task_ids)):
                    return ready
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return ready
                self._cond.wait(0.05 if remaining is None else min(remaining, 0.05))

    def forget(self, task_ids: Sequence[str]) -> None:
        with self._cond:
            for tid in task_ids:
                self._data.pop(tid, None)

    def history(self, query: HistoryQuery) -> HistoryPage:
        with self._cond:
            now = self._clock.now()
            found = [
                HistoryEntry(stored, outcome)
                for outcome, expires, stored in self._data.values()
                if expires > now and query.admits(stored, outcome)
            ]
        found.sort(key=lambda e: e.cursor, reverse=True)
        return HistoryPage.of(found, query.limit)

    def join_chord(self, chord_id: str, member_id: str) -> int:
        with self._cond:
            members, expires = self._chords.get(chord_id, (set(), 0.0))
            if expires <= self._clock.now():
                members = set()
            members.add(member_id)
            self._chords[chord_id] = (members, self._expires())
            return len(members)

    def purge_expired(self) -> int:
        with self._cond:
            now = self._clock.now()
            for chord in [c for c, (_, exp) in self._chords.items() if exp <= now]:
                del self._chords[chord]
            doomed = [tid for tid, (_, exp, _) in self._data.items() if exp <= now]
            for tid in doomed:
                del self._data[tid]
            return len(doomed)

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()
