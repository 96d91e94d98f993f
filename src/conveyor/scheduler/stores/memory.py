"""Schedule store in process memory: for tests and eager apps. One scheduler process only."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping

from ...clock import SYSTEM_CLOCK, Clock
from .base import Leadership, Source, StoredEntry


class MemoryScheduleStore:
    """Schedule-store contract in a dict, under one lock."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, StoredEntry] = {}
        self._holder: str | None = None
        self._expires = 0.0
        self._term = 0

    def __repr__(self) -> str:
        return "<MemoryScheduleStore (this process only)>"

    def sync(self, definitions: Mapping[str, str]) -> None:
        now = self._clock.now()
        with self._lock:
            for name, old in list(self._entries.items()):
                if old.source is Source.CONFIG and name not in definitions:
                    del self._entries[name]
            for name, definition in definitions.items():
                self._upsert(name, definition, Source.CONFIG, now)

    def put(self, name: str, definition: str) -> bool:
        with self._lock:
            old = self._entries.get(name)
            if old is not None and old.source is Source.CONFIG:
                return False
            self._upsert(name, definition, Source.RUNTIME, self._clock.now())
            return True

    def _upsert(self, name: str, definition: str, source: Source, now: float) -> None:
        old = self._entries.get(name)
        if old is None:
            self._entries[name] = StoredEntry(name, definition, source, False, now, None, 0, 0, now)
        elif old.definition != definition or old.source is not source:
            self._entries[name] = dataclasses.replace(
                old, definition=definition, source=source, updated_at=now
            )

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._entries.pop(name, None) is not None

    def set_paused(self, name: str, paused: bool) -> bool:
        with self._lock:
            old = self._entries.get(name)
            if old is None:
                return False
            self._entries[name] = dataclasses.replace(
                old, paused=paused, updated_at=self._clock.now()
            )
            return True

    def entries(self) -> list[StoredEntry]:
        with self._lock:
            return [self._entries[n] for n in sorted(self._entries)]

    def advance(
        self, name: str, expected: float | None, last_fire: float, fired: int, skipped: int
    ) -> bool:
        with self._lock:
            old = self._entries.get(name)
            if old is None or old.last_fire != expected:
                return False
            self._entries[name] = dataclasses.replace(
                old,
                last_fire=last_fire,
                fires=old.fires + fired,
                skipped=old.skipped + skipped,
            )
            return True

    def lead(self, holder: str, ttl: float) -> Leadership:
        now = self._clock.now()
        with self._lock:
            if self._holder == holder or self._holder is None or self._expires <= now:
                if self._holder != holder:
                    self._term += 1
                self._holder, self._expires = holder, now + ttl
            return self._state(now)

    def resign(self, holder: str) -> None:
        with self._lock:
            if self._holder == holder:
                self._holder, self._expires = None, 0.0

    def leadership(self) -> Leadership:
        with self._lock:
            return self._state(self._clock.now())

    def _state(self, now: float) -> Leadership:
        if self._holder is None or self._expires <= now:
            return Leadership(None, 0.0, self._term)
        return Leadership(self._holder, self._expires - now, self._term)

    def close(self) -> None:
        pass
