"""Redis result store: one hash per outcome with a native TTL, written by `redis_lua/put.lua`
(fenced by token, atomic per batch). Waiting readers subscribe to a channel the writer
publishes to, so `AsyncResult.get()` wakes at once instead of polling."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from .._redis import Scripts, client_from_url, transient_errors
from .._urls import safe_url
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import Guard, guarded
from ..states import TaskState
from .base import HistoryEntry, HistoryPage, HistoryQuery, Outcome

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Outcome)
_SCAN = 500  # history ids read per round trip


class RedisResultStore:
    """Result-store contract on one Redis database."""

    def __init__(
        self,
        url: str,
        ttl: float | None = 86400.0,
        clock: Clock = SYSTEM_CLOCK,
        retry_budget: float | None = 10.0,
    ) -> None:
        self._client, self.prefix = client_from_url(url)
        self.shown = safe_url(url)
        self.guard = Guard(f"result store at {self.shown}", url, transient_errors(), retry_budget)
        self._scripts = Scripts(
            self._client,
            "conveyor.results.redis_lua",
            ("put", "forget", "purge_expired", "join_chord"),
        )
        self._ttl = ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"<RedisResultStore {self.shown}>"

    def _now(self) -> str:
        return "" if self._clock is SYSTEM_CLOCK else repr(self._clock.now())

    @guarded
    def put(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        args: list[Any] = [self._now(), "" if self._ttl is None else repr(self._ttl)]
        for o in outcomes:
            bare_started = o.state is TaskState.STARTED and o.custom_state is None
            args += [o.task_id, o.token, _ENCODER.encode(o), int(o.state.ready), int(bare_started)]
        return [bool(v) for v in self._scripts("put", self.prefix, args)]

    def get(self, task_id: str) -> Outcome | None:
        return self.get_many([task_id]).get(task_id)

    @guarded
    def get_many(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        return self._fetch(task_ids)

    def _fetch(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        if not task_ids:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for tid in task_ids:
            pipe.hmget(f"{self.prefix}:res:{tid}", "ex", "v")
        now = time.time() if self._clock is SYSTEM_CLOCK else self._clock.now()
        found = {}
        for tid, (expires, value) in zip(task_ids, pipe.execute(), strict=True):
            if value is not None and (not expires or float(expires) > now):
                found[tid] = _DECODER.decode(value)
        return found

    @guarded
    def wait(self, task_ids: Sequence[str], timeout: float | None) -> dict[str, Outcome]:
        wanted = list(dict.fromkeys(task_ids))
        deadline = None if timeout is None else time.monotonic() + timeout
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(f"{self.prefix}:res:ready")  # before the first read: no lost wake-up
        try:
            while True:
                ready = {t: o for t, o in self.get_many(wanted).items() if o.state.ready}
                remaining = 1.0 if deadline is None else deadline - time.monotonic()
                if len(ready) == len(wanted) or remaining <= 0:
                    return ready
                pubsub.get_message(timeout=min(remaining, 1.0))
        finally:
            pubsub.close()

    @guarded
    def forget(self, task_ids: Sequence[str]) -> None:
        if not task_ids:
            return
        self._scripts("forget", self.prefix, [self._now(), *task_ids])

    @guarded
    def history(self, query: HistoryQuery) -> HistoryPage:
        """Walks the history index (P:resh) from the newest end, `_SCAN` ids per round trip,
        filtering here: Redis has no secondary index to ask for a state or task name, and a
        script scanning a large index would block the server."""
        top = "+inf" if query.before is None else repr(query.before.stored_at)
        bottom = "-inf" if query.since is None else repr(query.since)
        found: list[HistoryEntry] = []
        offset = 0
        while len(found) <= query.limit:
            batch: list[tuple[bytes, float]] = self._client.zrevrangebyscore(  # type: ignore[assignment]
                f"{self.prefix}:resh", top, bottom, start=offset, num=_SCAN, withscores=True
            )
            stored = [(member.decode(), float(score)) for member, score in batch]
            outcomes = self._fetch([tid for tid, _ in stored])
            for tid, at in stored:
                outcome = outcomes.get(tid)
                if outcome is not None and query.admits(at, outcome):
                    found.append(HistoryEntry(at, outcome))
            offset += len(batch)
            if len(batch) < _SCAN:
                break
        return HistoryPage.of(found[: query.limit + 1], query.limit)

    @guarded
    def join_chord(self, chord_id: str, member_id: str) -> int:
        ttl = "" if self._ttl is None else repr(self._ttl)
        return int(
            self._scripts("join_chord", self.prefix, [self._now(), ttl, chord_id, member_id])
        )

    @guarded
    def purge_expired(self) -> int:
        return int(self._scripts("purge_expired", self.prefix, [self._now()]))

    def close(self) -> None:
        self._scripts.close()
        self._client.close()
