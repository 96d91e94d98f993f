"""PostgreSQL broker. Statements live in `sql/postgres_broker.sql`; the tables come from the
migrations in `conveyor/migrations/` (their headers document the layout).

Claims are one `UPDATE … WHERE seq = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED))` per queue,
so workers never block each other. Each `reserve` first runs `maintain` in the same network
round trip (pipelined): due scheduled messages are promoted and expired leases taken back on
every reservation by whichever worker comes, so recovery is continuous, never left to chance.

Idle workers do not poll: they wait on a `Listener` (LISTEN on the schema's channel, which
enqueue, release and redrive NOTIFY), bounded by the time until the next scheduled message or
lease expiry, and a worker loop coming back to `reserve` does not claim again until one of
those happened (or a 5 s safety re-check is due). The database's clock is the only clock
unless a clock is injected (tests).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec

from .._postgres import now_param
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import guarded
from ..pgschema import open_backend
from ..sqlfiles import load_sql
from .base import (
    DEFAULT_IDEMPOTENCY_WINDOW,
    EVENT_STREAM_LIMIT,
    WORKER_RETENTION,
    Delivery,
    Envelope,
    Lease,
    MessageState,
    QueueStats,
    Requeue,
    Revocation,
    RevokeOutcome,
    StoredMessage,
    StreamEntry,
    WorkerInfo,
    stream_cursor,
    stream_position,
)
from .rows import STATE_CODES, granted, stored_message

_HOUSEKEEPING_EVERY = 30.0
# Idle waits re-check at least this often even when no NOTIFY comes (a safety net only).
_IDLE_RECHECK = 5.0


class PostgresBroker:
    """Broker contract on one PostgreSQL schema (see the module docstring)."""

    def __init__(
        self,
        url: str,
        clock: Clock = SYSTEM_CLOCK,
        idempotency_window: float = DEFAULT_IDEMPOTENCY_WINDOW,
        auto_migrate: bool = True,
        retry_budget: float | None = 10.0,
        event_stream_limit: int = EVENT_STREAM_LIMIT,
    ) -> None:
        self.event_stream_limit = event_stream_limit
        opened = open_backend(url, "broker", 8, auto_migrate, retry_budget)
        self.target, self._db, self._listener = opened.target, opened.db, opened.listener
        self.guard = opened.guard
        self._q = load_sql("conveyor.brokers.sql", "postgres_broker.sql")
        self._clock = clock
        self._window = idempotency_window
        self._next_housekeeping = 0.0
        # queues -> (listener version, monotonic time) of the last claim that found nothing
        self._idle: dict[tuple[str, ...], tuple[int, float]] = {}

    def __repr__(self) -> str:
        return f"<PostgresBroker {self.target.shown} schema={self.target.schema}>"

    @property
    def schema(self) -> str:
        return self.target.schema

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"now": now_param(self._clock), "channel": self.target.channel, **values}

    def _one(self, statement: str, **values: Any) -> Any:
        with self._db.connection() as conn:
            return conn.execute(self._q[statement], self._params(**values)).fetchone()

    def _all(self, statement: str, **values: Any) -> list[Any]:
        with self._db.connection() as conn:
            return conn.execute(self._q[statement], self._params(**values)).fetchall()

    # -- hot path ---------------------------------------------------------------------------
    @guarded
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[bool]:
        if not envelopes:
            return []
        self._housekeeping()
        rows = self._all(
            "enqueue",
            ids=[e.id for e in envelopes],
            queues=[e.queue for e in envelopes],
            priorities=[e.priority for e in envelopes],
            delays=[max(0.0, float(e.delay)) for e in envelopes],
            bodies=[e.body for e in envelopes],
            max_deliveries=[e.max_deliveries for e in envelopes],
        )
        fresh = {r[0] for r in rows}
        out = []
        for e in envelopes:  # an id twice in one batch: only its first copy was stored
            out.append(e.id in fresh)
            fresh.discard(e.id)
        return out

    def _housekeeping(self) -> None:
        """Drop expired idempotency tombstones and stale worker records, at most every 30 s
        per process (on the broker's clock, so an injected clock drives it too)."""
        now = self._clock.now()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + _HOUSEKEEPING_EVERY
        with self._db.connection() as conn:
            conn.execute(self._q["forget_done"], self._params(window=self._window))
            conn.execute(self._q["forget_workers"], self._params(retention=WORKER_RETENTION))

    @guarded
    def reserve(
        self, queues: Sequence[str], limit: int, lease_for: float, wait: float = 0.0
    ) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        queues = list(dict.fromkeys(queues))
        key = tuple(queues)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            version = self._listener.version() if wait > 0 else 0
            if not self._still_idle(key, version):
                got = self._reserve_now(queues, limit, lease_for)
                if got:
                    return got
                self._idle[key] = (version, time.monotonic() + self._quiet_for())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            pause = min(remaining, self._idle[key][1] - time.monotonic())
            if pause > 0:
                self._listener.wait(version, pause)

    def _still_idle(self, key: tuple[str, ...], version: int) -> bool:
        """True when the last claim for these queues found nothing, no NOTIFY came since, and
        nothing can have fallen due: claiming again now would only be polling."""
        memo = self._idle.get(key)
        return (
            memo is not None
            and memo[0] == version
            and self._listener.connected
            and self._clock is SYSTEM_CLOCK  # an injected clock moves without real time
            and time.monotonic() < memo[1]
        )

    def _quiet_for(self) -> float:
        """Seconds until the next scheduled message or lease expiry (a safety cap if none)."""
        (due_in,) = self._one("next_due")
        return _IDLE_RECHECK if due_in is None else max(0.0, min(float(due_in), _IDLE_RECHECK))

    def _reserve_now(self, queues: list[str], limit: int, lease_for: float) -> list[Delivery]:
        out: list[Delivery] = []
        with self._db.connection() as conn:
            for position, queue in enumerate(queues):
                params = self._params(queue=queue, limit=limit - len(out), lease_for=lease_for)
                if position == 0:  # maintenance rides in the same round trip as the claim
                    with conn.pipeline():
                        conn.execute(self._q["maintain"], params)
                        cur = conn.execute(self._q["claim"], params)
                    rows = cur.fetchall()
                else:
                    rows = conn.execute(self._q["claim"], params).fetchall()
                rows.sort(key=lambda r: (-r[2], r[11], r[12]))
                out += [_delivery(r) for r in rows]
                if len(out) >= limit:
                    break
        return out

    @guarded
    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        if not leases:
            return []
        rows = self._all(
            "extend",
            ids=[x.message_id for x in leases],
            tokens=[x.token for x in leases],
            lease_for=lease_for,
        )
        kept = {r[0]: r for r in rows}
        out: list[Lease | None] = []
        for x in leases:
            r = kept.get(x.message_id)
            out.append(None if r is None else Lease(x.message_id, x.token, r[3], r[1], r[2]))
        return out

    def _fenced(self, statement: str, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        rows = self._all(
            statement, ids=[x.message_id for x in leases], tokens=[x.token for x in leases]
        )
        done = {r[0] for r in rows}
        return [x.message_id in done for x in leases]

    @guarded
    def confirm(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        rows = self._all(
            "confirm", ids=[x.message_id for x in leases], tokens=[x.token for x in leases]
        )
        held = {(r[0], r[1]) for r in rows}
        return [(x.message_id, x.token) in held for x in leases]

    @guarded
    def ack(self, leases: Sequence[Lease]) -> list[bool]:
        return self._fenced("ack", leases)

    @guarded
    def begin(self, leases: Sequence[Lease]) -> list[bool]:
        return self._fenced("begin", leases)

    @guarded
    def release(
        self,
        lease: Lease,
        delay: float = 0.0,
        body: bytes | None = None,
        error: str | None = None,
        requeue: Requeue = Requeue.RETRY,
    ) -> bool:
        (count, _) = self._one(
            "release",
            id=lease.message_id,
            token=lease.token,
            delay=max(0.0, delay),
            body=body,
            error=error,
            lost=requeue is Requeue.LOST,
            unstarted=requeue is Requeue.UNSTARTED,
        )
        return bool(count)

    @guarded
    def dead_letter(self, lease: Lease, reason: str) -> bool:
        row = self._one("dead_letter", id=lease.message_id, token=lease.token, reason=reason)
        return row is not None

    @guarded
    def throttle(self, key: str, interval: float) -> float:
        (wait,) = self._one("throttle", key=key, interval=interval)
        return max(0.0, float(wait))

    @guarded
    def revoke(self, message_ids: Sequence[str], terminate: bool = False) -> list[Revocation]:
        out: list[Revocation] = []
        with self._db.connection() as conn, conn.transaction():
            for mid in message_ids:
                params = self._params(id=mid, terminate=terminate)
                if conn.execute(self._q["revoke_leased"], params).rowcount:
                    outcome = RevokeOutcome.FLAGGED
                elif conn.execute(self._q["revoke_waiting"], params).rowcount:
                    outcome = RevokeOutcome.REMOVED
                else:
                    conn.execute(self._q["revoke_unknown"], params)
                    outcome = RevokeOutcome.UNKNOWN
                row = conn.execute(self._q["next_token"]).fetchone()
                assert row is not None
                out.append(Revocation(mid, outcome, int(row[0])))
        return out

    # -- workers ----------------------------------------------------------------------------
    @guarded
    def register_worker(self, info: WorkerInfo) -> None:
        with self._db.connection() as conn:
            conn.execute(
                self._q["register_worker"],
                {
                    "name": info.name,
                    "info": msgspec.json.encode(info),
                    "heartbeat_at": info.heartbeat_at,
                },
            )

    @guarded
    def workers(self) -> list[WorkerInfo]:
        return [msgspec.json.decode(r[0], type=WorkerInfo) for r in self._all("workers")]

    # -- the event stream ------------------------------------------------------------------
    # Not guarded: a retry after a lost reply would store the batch twice (events are at most
    # once; the publisher drops a batch that fails).
    def publish_events(self, bodies: Sequence[bytes]) -> None:
        if not bodies:
            return
        limit = max(0, self.event_stream_limit)
        kept = list(bodies)[-limit:] if limit else []  # the rest would fall off at once
        n = len(kept)
        with self._db.connection() as conn, conn.transaction():
            row = conn.execute(self._q["take_event_positions"], {"n": n}).fetchone()
            assert row is not None  # migration 0007 inserts the counter's one row
            params = {"last": int(row[0]), "n": n, "bodies": kept, "limit": limit}
            conn.execute(self._q["store_events"], params)

    @guarded
    def read_events(self, after: str | None, limit: int) -> list[StreamEntry]:
        if limit <= 0:
            return []
        if after is None:
            rows = self._all("newest_events", limit=limit)
        else:
            rows = self._all("events_after", after=stream_position(after), limit=limit)
        return [StreamEntry(stream_cursor(int(i)), bytes(b)) for i, b in rows]

    # -- admin ------------------------------------------------------------------------------
    @guarded
    def queue_stats(self) -> list[QueueStats]:
        return [
            QueueStats(q, int(r), int(s), int(le), int(d), float(age))
            for q, r, s, le, d, age in self._all("queue_stats")
        ]

    @guarded
    def list_messages(
        self, queue: str, state: MessageState | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        code = None if state is None else STATE_CODES[state]
        rows = self._all("list_messages", queue=queue, state=code, limit=limit, offset=offset)
        return [stored_message(r) for r in rows]

    @guarded
    def get_message(self, message_id: str) -> StoredMessage | None:
        row = self._one("get_message", id=message_id)
        return None if row is None else stored_message(row)

    @guarded
    def purge_dead(self, queues: Sequence[str] | None = None, older_than: float = 0.0) -> int:
        with self._db.connection() as conn:
            cur = conn.execute(
                self._q["purge_dead"],
                self._params(
                    older_than=older_than, all_queues=queues is None, queues=list(queues or ())
                ),
            )
            return cur.rowcount

    @guarded
    def redrive(self, message_ids: Sequence[str]) -> int:
        if not message_ids:
            return 0
        (count, _) = self._one("redrive", ids=list(message_ids))
        return int(count)

    @guarded
    def purge(self, queues: Sequence[str], include_dead: bool = False) -> int:
        with self._db.connection() as conn:
            cur = conn.execute(
                self._q["purge"], {"queues": list(queues), "include_dead": include_dead}
            )
            return cur.rowcount

    def close(self) -> None:
        self._listener.close()
        self._db.close()


def _delivery(r: Sequence[Any]) -> Delivery:
    return granted(r, int(r[9]), float(r[10]))
