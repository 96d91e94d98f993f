"""SQLite schedule store, in the result backend's file. Statements live in
`sql/sqlite_schedules.sql`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from ..._sqlite import (
    DEFAULT_FILE_MODE,
    DEFAULT_SYNCHRONOUS,
    SqliteDatabase,
    lock_wait,
    sqlite_guard,
)
from ...clock import SYSTEM_CLOCK, Clock
from ...guard import guarded
from ...sqlfiles import load_sql
from .base import Leadership, Source, StoredEntry
from .rows import advance_params, entry_from_row, leadership_from_row

_SQL = "conveyor.scheduler.stores.sql"


class SqliteScheduleStore:
    """Schedule-store contract on one SQLite file: every change in one write transaction.
    Its guard rides out a full or failing disk (`conveyor._sqlite`)."""

    def __init__(
        self,
        path: Path,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        clock: Clock = SYSTEM_CLOCK,
        *,
        file_mode: int = DEFAULT_FILE_MODE,
        retry_budget: float | None = 10.0,
    ) -> None:
        self._q = load_sql(_SQL, "sqlite_schedules.sql")
        self._db = SqliteDatabase(
            path, synchronous, self._q["schema"], file_mode, lock_wait(retry_budget)
        )
        self.guard = sqlite_guard("schedule store", path, retry_budget)
        self._clock = clock

    def __repr__(self) -> str:
        return f"<SqliteScheduleStore {self._db.path}>"

    @guarded
    def sync(self, definitions: Mapping[str, str]) -> None:
        now = self._clock.now()
        with self._db.transaction() as conn:
            conn.execute(self._q["drop_stale_config"], {"names": json.dumps(list(definitions))})
            for name, definition in definitions.items():
                self._upsert(conn, name, definition, Source.CONFIG, now)

    @guarded
    def put(self, name: str, definition: str) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute(self._q["source_of"], {"name": name}).fetchone()
            if row is not None and row[0] == Source.CONFIG.value:
                return False
            self._upsert(conn, name, definition, Source.RUNTIME, self._clock.now())
            return True

    def _upsert(
        self, conn: sqlite3.Connection, name: str, definition: str, source: Source, now: float
    ) -> None:
        conn.execute(
            self._q["upsert"],
            {"name": name, "definition": definition, "source": source.value, "now": now},
        )

    @guarded
    def remove(self, name: str) -> bool:
        with self._db.transaction() as conn:
            return conn.execute(self._q["remove"], {"name": name}).rowcount == 1

    @guarded
    def set_paused(self, name: str, paused: bool) -> bool:
        params = {"name": name, "paused": int(paused), "now": self._clock.now()}
        with self._db.transaction() as conn:
            return conn.execute(self._q["set_paused"], params).rowcount == 1

    @guarded
    def entries(self) -> list[StoredEntry]:
        rows = self._db.connection().execute(self._q["entries"]).fetchall()
        return [entry_from_row(r) for r in rows]

    @guarded
    def advance(
        self, name: str, expected: float | None, last_fire: float, fired: int, skipped: int
    ) -> bool:
        params = advance_params(name, expected, last_fire, fired, skipped)
        with self._db.transaction() as conn:
            return conn.execute(self._q["advance"], params).rowcount == 1

    @guarded
    def lead(self, holder: str, ttl: float) -> Leadership:
        now = self._clock.now()
        with self._db.transaction() as conn:
            conn.execute(self._q["lead"], {"holder": holder, "ttl": ttl, "now": now})
            row = conn.execute(self._q["leadership"]).fetchone()
        return leadership_from_row(row, now)

    @guarded
    def resign(self, holder: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(self._q["resign"], {"holder": holder})

    @guarded
    def leadership(self) -> Leadership:
        row = self._db.connection().execute(self._q["leadership"]).fetchone()
        return leadership_from_row(row, self._clock.now())

    def close(self) -> None:
        self._db.close()
