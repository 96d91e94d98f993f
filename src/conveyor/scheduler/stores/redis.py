"""Redis schedule store, under the result backend's key prefix. Every operation is one Lua
script in `redis_lua/` (atomic on the server); `_prelude.lua` documents the key layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._redis import Scripts, client_from_url, transient_errors
from ..._urls import safe_url
from ...clock import SYSTEM_CLOCK, Clock
from ...guard import Guard, guarded
from .base import Leadership, Source, StoredEntry

_SCRIPTS = (
    "sync",
    "put",
    "remove",
    "set_paused",
    "entries",
    "advance",
    "lead",
    "leadership",
    "resign",
)


class RedisScheduleStore:
    """Schedule-store contract on one Redis database."""

    def __init__(
        self, url: str, clock: Clock = SYSTEM_CLOCK, retry_budget: float | None = 10.0
    ) -> None:
        self._client, self.prefix = client_from_url(url)
        self.shown = safe_url(url)
        self.guard = Guard(f"schedule store at {self.shown}", url, transient_errors(), retry_budget)
        self._scripts = Scripts(self._client, "conveyor.scheduler.stores.redis_lua", _SCRIPTS)
        self._clock = clock

    def __repr__(self) -> str:
        return f"<RedisScheduleStore {self.shown}>"

    def _call(self, script: str, *args: Any) -> Any:
        now = "" if self._clock is SYSTEM_CLOCK else repr(self._clock.now())
        return self._scripts(script, self.prefix, [now, *args])

    @guarded
    def sync(self, definitions: Mapping[str, str]) -> None:
        self._call("sync", *[v for pair in definitions.items() for v in pair])

    @guarded
    def put(self, name: str, definition: str) -> bool:
        return bool(self._call("put", name, definition))

    @guarded
    def remove(self, name: str) -> bool:
        return bool(self._call("remove", name))

    @guarded
    def set_paused(self, name: str, paused: bool) -> bool:
        return bool(self._call("set_paused", name, "1" if paused else "0"))

    @guarded
    def entries(self) -> list[StoredEntry]:
        out = [_entry(row) for row in self._call("entries")]
        return sorted(out, key=lambda e: e.name)

    @guarded
    def advance(
        self, name: str, expected: float | None, last_fire: float, fired: int, skipped: int
    ) -> bool:
        old = "" if expected is None else repr(expected)
        return bool(self._call("advance", name, old, repr(last_fire), fired, skipped))

    @guarded
    def lead(self, holder: str, ttl: float) -> Leadership:
        return _leadership(self._call("lead", holder, repr(ttl)))

    @guarded
    def resign(self, holder: str) -> None:
        self._call("resign", holder)

    @guarded
    def leadership(self) -> Leadership:
        return _leadership(self._call("leadership"))

    def close(self) -> None:
        self._scripts.close()
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(row: list[bytes]) -> StoredEntry:
    name, definition, source, paused, anchor, last, fires, skipped, updated = map(_text, row)
    return StoredEntry(
        name=name,
        definition=definition,
        source=Source(source),
        paused=paused == "1",
        anchor=float(anchor),
        last_fire=float(last) if last else None,
        fires=int(fires),
        skipped=int(skipped),
        updated_at=float(updated),
    )


def _leadership(reply: list[bytes]) -> Leadership:
    holder, remaining, term = map(_text, reply)
    return Leadership(holder or None, float(remaining), int(term))
