"""SQLite result store, in the same file as the SQLite broker by default. Statements live in
`sql/sqlite_results.sql`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._sqlite import DEFAULT_FILE_MODE, DEFAULT_SYNCHRONOUS, SqliteDatabase, sqlite_guard
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import guarded
from ..sqlfiles import load_sql
from .base import HistoryPage, HistoryQuery, Outcome
from .rows import entry_from_row, history_params, outcome_from_row


class SqliteResultStore:
    """Result-store contract on one SQLite file (WAL). Its guard rides out a full or failing
    disk as the server stores' guards ride out an outage (`conveyor._sqlite`)."""

    def __init__(
        self,
        path: Path,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        ttl: float | None = 86400.0,
        clock: Clock = SYSTEM_CLOCK,
        *,
        file_mode: int = DEFAULT_FILE_MODE,
        retry_budget: float | None = 10.0,
    ) -> None:
        self._q = load_sql("conveyor.results.sql", "sqlite_results.sql")
        self._db = SqliteDatabase(path, synchronous, self._q["schema"], file_mode)
        self.guard = sqlite_guard("result store", path, retry_budget)
        self._ttl = ttl
        self._clock = clock
        self.guard.call(self._upgrade)

    def _upgrade(self) -> None:
        """A file from an earlier release (or a new one) gains columns, and the chord counts
        with their trigger, counted from the member rows it holds — once, under the write
        lock, however many processes open it at once."""
        with self._db.transaction() as conn:
            have = {r[0] for r in conn.execute(self._q["columns"])}
            for column in ("token", "arguments"):
                if column not in have:
                    conn.execute(self._q[f"upgrade_{column}"])
            if conn.execute(self._q["chord_counts_present"]).fetchone() is None:
                for step in ("table", "index", "trigger", "fill"):
                    conn.execute(self._q[f"upgrade_chord_counts_{step}"])

    @guarded
    def put(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        now = self._clock.now()
        expires = None if self._ttl is None else now + self._ttl
        put = self._q["put"]
        with self._db.transaction() as conn:
            return [conn.execute(put, _row(o, now, expires)).rowcount == 1 for o in outcomes]

    def get(self, task_id: str) -> Outcome | None:
        return self.get_many([task_id]).get(task_id)

    @guarded
    def get_many(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        if not task_ids:
            return {}
        rows = self._db.connection().execute(
            self._q["get_many"], {"ids": json.dumps(list(task_ids)), "now": self._clock.now()}
        )
        return {r[0]: outcome_from_row(r) for r in rows}

    @guarded
    def wait(self, task_ids: Sequence[str], timeout: float | None) -> dict[str, Outcome]:
        wanted = set(task_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            version = self._db.data_version()
            ready = {t: o for t, o in self.get_many(list(wanted)).items() if o.state.ready}
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if len(ready) == len(wanted) or remaining <= 0:
                return ready
            self._db.wait_for_change(version, min(remaining, 1.0))

    @guarded
    def forget(self, task_ids: Sequence[str]) -> None:
        with self._db.transaction() as conn:
            conn.execute(self._q["forget"], {"ids": json.dumps(list(task_ids))})

    @guarded
    def history(self, query: HistoryQuery) -> HistoryPage:
        params = history_params(query, self._clock.now())
        rows = self._db.connection().execute(self._q["history"], params).fetchall()
        return HistoryPage.of([entry_from_row(r) for r in rows], query.limit)

    @guarded
    def join_chord(self, chord_id: str, member_id: str) -> int:
        now = self._clock.now()
        expires = None if self._ttl is None else now + self._ttl
        params = {"chord": chord_id, "member": member_id, "expires": expires}
        q = self._q
        with self._db.transaction() as conn:  # a fixed number of one-row statements
            found = conn.execute(q["chord_count"], params).fetchone()
            if found is not None and found[1] is not None and found[1] <= now:  # expired
                conn.execute(q["forget_chord_members"], params)
                conn.execute(q["forget_chord_count"], params)
            conn.execute(q["join_chord"], params)  # a new member is counted by the trigger
            conn.execute(q["touch_chord"], params)
            return int(conn.execute(q["chord_count"], params).fetchone()[0])

    @guarded
    def purge_expired(self) -> int:
        now = {"now": self._clock.now()}
        with self._db.transaction() as conn:
            conn.execute(self._q["purge_expired_joins"], now)
            conn.execute(self._q["purge_expired_counts"], now)
            return conn.execute(self._q["purge_expired"], now).rowcount

    def close(self) -> None:
        self._db.close()


def _row(o: Outcome, now: float, expires: float | None) -> dict[str, Any]:
    err = o.error
    return {
        "task_id": o.task_id,
        "state": o.state_name,
        "value": o.value,
        "error_type": err.type if err else None,
        "error_module": err.module if err else None,
        "error_message": err.message if err else None,
        "traceback": err.traceback if err else None,
        "task_name": o.task_name,
        "queue": o.queue,
        "worker": o.worker,
        "attempt": o.attempt,
        "retries": o.retries,
        "started_at": o.started_at,
        "finished_at": o.finished_at,
        "reason": o.reason,
        "updated_at": now,
        "expires_at": expires,
        "token": o.token,
        "arguments": o.arguments,
    }
