"""SQLite broker: the embedded default, for any number of producer and worker processes on one
machine. Statements live in `sql/sqlite_broker.sql`, whose header documents the table layout.

The broker's clock (one `Clock`, the machine's by default) is the only source of time; every
process on the machine reads the same clock, and tests inject a FakeClock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from .._sqlite import (
    DEFAULT_FILE_MODE,
    DEFAULT_SYNCHRONOUS,
    SqliteDatabase,
    lock_wait,
    sqlite_guard,
)
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import guarded
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
# Upper bound on one idle wait before re-probing: catches due times of delayed messages and
# expired leases even though no commit wakes us for those.
_IDLE_REPROBE = 0.25


def _sql() -> dict[str, str]:
    return load_sql("conveyor.brokers.sql", "sqlite_broker.sql")


class SqliteBroker:
    """Broker contract on one SQLite file (WAL). Its guard rides out a full or failing disk
    as the server backends' guards ride out an outage (`conveyor._sqlite`)."""

    def __init__(
        self,
        path: Path,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        clock: Clock = SYSTEM_CLOCK,
        idempotency_window: float = DEFAULT_IDEMPOTENCY_WINDOW,
        *,
        file_mode: int = DEFAULT_FILE_MODE,
        retry_budget: float | None = 10.0,
        event_stream_limit: int = EVENT_STREAM_LIMIT,
    ) -> None:
        self.event_stream_limit = event_stream_limit
        self._q = _sql()
        self._db = SqliteDatabase(
            path, synchronous, self._q["schema"], file_mode, lock_wait(retry_budget)
        )
        self.guard = sqlite_guard("broker", path, retry_budget)
        self.guard.call(self._upgrade)
        self._clock = clock
        self._window = idempotency_window
        self._next_housekeeping = 0.0

    @property
    def path(self) -> Path:
        return self._db.path

    def _upgrade(self) -> None:
        """Bring a file written by an earlier release to the current layout."""
        with self._db.transaction() as conn:
            columns = {r[0] for r in conn.execute(self._q["columns"])}
            if "begun" not in columns:
                for statement in self._q["upgrade_v2"].split(";"):
                    if statement.strip():
                        conn.execute(statement)

    # -- hot path ---------------------------------------------------------------------------
    @guarded
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[bool]:
        now = self._clock.now()
        insert = self._q["insert"]
        stored: list[bool] = []
        with self._db.transaction() as conn:
            self._housekeeping(conn, now)
            for env in envelopes:
                delay = max(0.0, env.delay)
                cur = conn.execute(
                    insert,
                    {
                        "id": env.id,
                        "queue": env.queue,
                        "priority": env.priority,
                        "state": 1 if delay > 0 else 0,
                        "available_at": now + delay,
                        "body": env.body,
                        "max_deliveries": env.max_deliveries,
                    },
                )
                stored.append(cur.rowcount == 1)
        return stored

    def _housekeeping(self, conn: sqlite3.Connection, now: float) -> None:
        """Drop expired idempotency tombstones and stale worker records, at most every 30 s
        per process. Runs inside the caller's transaction."""
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + _HOUSEKEEPING_EVERY
        conn.execute(self._q["forget_done"], {"cutoff": now - self._window})
        conn.execute(self._q["forget_workers"], {"cutoff": now - WORKER_RETENTION})

    @guarded
    def reserve(
        self, queues: Sequence[str], limit: int, lease_for: float, wait: float = 0.0
    ) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            version = self._db.data_version()
            next_due = self._probe(queues)
            if next_due is not None and next_due <= self._clock.now():
                got = self._reserve_now(queues, limit, lease_for)
                if got:
                    return got
                next_due = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            pause = min(remaining, _IDLE_REPROBE)
            if next_due is not None:
                pause = min(pause, max(0.0, next_due - self._clock.now()))
            self._db.wait_for_change(version, pause)

    def _probe(self, queues: Sequence[str]) -> float | None:
        """Earliest time something may be due for `queues` (now if a message is ready), or
        None. Read-only, so idle workers do not take the write lock."""
        conn = self._db.connection()
        soonest: float | None = None
        for queue in queues:
            ready, scheduled, expiry = conn.execute(self._q["probe"], {"queue": queue}).fetchone()
            if ready:
                return self._clock.now()
            for t in (scheduled, expiry):
                if t is not None and (soonest is None or t < soonest):
                    soonest = t
        return soonest

    def _reserve_now(self, queues: Sequence[str], limit: int, lease_for: float) -> list[Delivery]:
        now = self._clock.now()
        with self._db.transaction() as conn:
            conn.execute(self._q["promote_due"], {"now": now})
            conn.execute(self._q["reclaim_expired"], {"now": now})
            chosen: list[int] = []
            for queue in dict.fromkeys(queues):  # queue order first: the contract's order
                chosen += [
                    seq
                    for seq, _, _ in conn.execute(
                        self._q["ready_in_queue"], {"queue": queue, "limit": limit - len(chosen)}
                    )
                ]
                if len(chosen) >= limit:
                    break
            if not chosen:
                return []
            (token,) = conn.execute(self._q["next_token"]).fetchone()
            expires = now + lease_for
            rows = conn.execute(
                self._q["grant"],
                {"seqs": json.dumps(chosen), "token": token, "expires": expires},
            ).fetchall()
        position = {seq: i for i, seq in enumerate(chosen)}
        rows.sort(key=lambda r: position[r[0]])
        return [granted((r[1], r[2], r[3], r[5], *r[6:11]), token, expires) for r in rows]

    def _settle(self, statement: str, params: list[dict[str, Any]]) -> list[bool]:
        now = self._clock.now()
        sql = self._q[statement]
        with self._db.transaction() as conn:
            return [conn.execute(sql, {**p, "now": now}).rowcount == 1 for p in params]

    @guarded
    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        if not leases:
            return []
        now = self._clock.now()
        expires = now + lease_for
        sql = self._q["extend"]
        out: list[Lease | None] = []
        with self._db.transaction() as conn:
            for x in leases:
                params = {"id": x.message_id, "token": x.token, "expires": expires, "now": now}
                row = conn.execute(sql, params).fetchone()
                out.append(
                    None
                    if row is None
                    else Lease(x.message_id, x.token, expires, bool(row[0]), bool(row[1]))
                )
        return out

    @guarded
    def confirm(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        pairs = json.dumps([[x.message_id, x.token] for x in leases])
        params = {"leases": pairs, "now": self._clock.now()}
        rows = self._db.connection().execute(self._q["confirm"], params).fetchall()
        held = {(r[0], r[1]) for r in rows}
        return [(x.message_id, x.token) in held for x in leases]

    @guarded
    def ack(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        return self._settle("ack", [{"id": x.message_id, "token": x.token} for x in leases])

    @guarded
    def release(
        self,
        lease: Lease,
        delay: float = 0.0,
        body: bytes | None = None,
        error: str | None = None,
        requeue: Requeue = Requeue.RETRY,
    ) -> bool:
        params = {
            "id": lease.message_id,
            "token": lease.token,
            "delay": max(0.0, delay),
            "body": body,
            "error": error,
            "lost": int(requeue is Requeue.LOST),
            "unstarted": int(requeue is Requeue.UNSTARTED),
        }
        return self._settle("release", [params])[0]

    @guarded
    def dead_letter(self, lease: Lease, reason: str) -> bool:
        params = {"id": lease.message_id, "token": lease.token, "reason": reason}
        return self._settle("dead_letter", [params])[0]

    @guarded
    def begin(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        return self._settle("begin", [{"id": x.message_id, "token": x.token} for x in leases])

    @guarded
    def throttle(self, key: str, interval: float) -> float:
        now = self._clock.now()
        with self._db.transaction() as conn:
            params = {"key": key, "now": now, "interval": interval}
            (slot,) = conn.execute(self._q["throttle"], params).fetchone()
        return max(0.0, float(slot) - now)

    @guarded
    def revoke(self, message_ids: Sequence[str], terminate: bool = False) -> list[Revocation]:
        now = self._clock.now()
        out: list[Revocation] = []
        with self._db.transaction() as conn:
            for mid in message_ids:
                params = {"id": mid, "now": now, "terminate": int(terminate)}
                if conn.execute(self._q["revoke_leased"], params).rowcount:
                    outcome = RevokeOutcome.FLAGGED
                elif conn.execute(self._q["revoke_waiting"], params).rowcount:
                    outcome = RevokeOutcome.REMOVED
                else:
                    conn.execute(self._q["revoke_unknown"], params)
                    outcome = RevokeOutcome.UNKNOWN
                (token,) = conn.execute(self._q["next_token"]).fetchone()
                out.append(Revocation(mid, outcome, token))
        return out

    # -- workers ----------------------------------------------------------------------------
    @guarded
    def register_worker(self, info: WorkerInfo) -> None:
        with self._db.transaction() as conn:
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
        rows = self._db.connection().execute(self._q["workers"]).fetchall()
        return [msgspec.json.decode(r[0], type=WorkerInfo) for r in rows]

    # -- the event stream ------------------------------------------------------------------
    @guarded
    def publish_events(self, bodies: Sequence[bytes]) -> None:
        if not bodies:
            return
        limit = max(0, self.event_stream_limit)
        with self._db.transaction() as conn:
            conn.executemany(self._q["publish_event"], [{"body": b} for b in bodies])
            conn.execute(self._q["trim_events"], {"limit": limit})

    @guarded
    def read_events(self, after: str | None, limit: int) -> list[StreamEntry]:
        if limit <= 0:
            return []
        if after is None:
            sql, params = self._q["newest_events"], {"limit": limit}
        else:
            sql, params = self._q["events_after"], {"after": stream_position(after), "limit": limit}
        rows = self._db.connection().execute(sql, params).fetchall()
        return [StreamEntry(stream_cursor(int(i)), bytes(b)) for i, b in rows]

    # -- admin ------------------------------------------------------------------------------
    @guarded
    def queue_stats(self) -> list[QueueStats]:
        now = self._clock.now()
        rows = self._db.connection().execute(self._q["queue_stats"], {"now": now}).fetchall()
        return [
            QueueStats(q, int(r), int(s), int(le), int(d), float(age))
            for q, r, s, le, d, age in rows
        ]

    @guarded
    def list_messages(
        self, queue: str, state: MessageState | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        with self._db.transaction() as conn:  # promote first so ready/scheduled are exact
            conn.execute(self._q["promote_due"], {"now": self._clock.now()})
        params: dict[str, Any] = {"queue": queue, "limit": limit, "offset": offset}
        if state is None:
            sql = self._q["list_messages"]
        else:
            sql = self._q["list_messages_in_state"]
            params["state"] = STATE_CODES[state]
        rows = self._db.connection().execute(sql, params).fetchall()
        return [stored_message(r) for r in rows]

    @guarded
    def get_message(self, message_id: str) -> StoredMessage | None:
        with self._db.transaction() as conn:
            conn.execute(self._q["promote_due"], {"now": self._clock.now()})
            row = conn.execute(self._q["get_message"], {"id": message_id}).fetchone()
        return None if row is None else stored_message(row)

    @guarded
    def purge_dead(self, queues: Sequence[str] | None = None, older_than: float = 0.0) -> int:
        params = {
            "cutoff": self._clock.now() - older_than,
            "all_queues": queues is None,
            "queues": json.dumps(list(queues or ())),
        }
        with self._db.transaction() as conn:
            return conn.execute(self._q["purge_dead"], params).rowcount

    @guarded
    def redrive(self, message_ids: Sequence[str]) -> int:
        moved = self._settle("redrive", [{"id": mid} for mid in message_ids])
        return sum(moved)

    @guarded
    def purge(self, queues: Sequence[str], include_dead: bool = False) -> int:
        with self._db.transaction() as conn:
            cur = conn.execute(
                self._q["purge"], {"queues": json.dumps(list(queues)), "include_dead": include_dead}
            )
            return cur.rowcount

    def close(self) -> None:
        self._db.close()
