"""PostgreSQL schedule store, in the result backend's schema. Statements live in
`sql/postgres_schedules.sql`; the tables come from `conveyor/migrations/0003_schedules.sql`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._postgres import now_param
from ...clock import SYSTEM_CLOCK, Clock
from ...guard import guarded
from ...pgschema import open_backend
from ...sqlfiles import load_sql
from .base import Leadership, Source, StoredEntry
from .rows import advance_params, entry_from_row, leadership_from_row


class PostgresScheduleStore:
    """Schedule-store contract on one PostgreSQL schema: every change one transaction."""

    def __init__(
        self,
        url: str,
        clock: Clock = SYSTEM_CLOCK,
        auto_migrate: bool = True,
        retry_budget: float | None = 10.0,
    ) -> None:
        opened = open_backend(url, "schedule store", 2, auto_migrate, retry_budget)
        self.target, self._db, self.guard = opened.target, opened.db, opened.guard
        self._q = load_sql("conveyor.scheduler.stores.sql", "postgres_schedules.sql")
        self._clock = clock

    def __repr__(self) -> str:
        return f"<PostgresScheduleStore {self.target.shown} schema={self.target.schema}>"

    @property
    def schema(self) -> str:
        return self.target.schema

    def _params(self, **values: Any) -> dict[str, Any]:
        return {"now": now_param(self._clock), **values}

    @guarded
    def sync(self, definitions: Mapping[str, str]) -> None:
        with self._db.connection() as conn, conn.transaction():
            conn.execute(self._q["drop_stale_config"], self._params(names=list(definitions)))
            for name, definition in definitions.items():
                conn.execute(
                    self._q["upsert"],
                    self._params(name=name, definition=definition, source=Source.CONFIG.value),
                )

    @guarded
    def put(self, name: str, definition: str) -> bool:
        with self._db.connection() as conn, conn.transaction():
            row = conn.execute(self._q["source_of"], {"name": name}).fetchone()
            if row is not None and row[0] == Source.CONFIG.value:
                return False
            conn.execute(
                self._q["upsert"],
                self._params(name=name, definition=definition, source=Source.RUNTIME.value),
            )
            return True

    @guarded
    def remove(self, name: str) -> bool:
        with self._db.connection() as conn:
            return conn.execute(self._q["remove"], {"name": name}).rowcount == 1

    @guarded
    def set_paused(self, name: str, paused: bool) -> bool:
        with self._db.connection() as conn:
            cur = conn.execute(self._q["set_paused"], self._params(name=name, paused=paused))
            return cur.rowcount == 1

    @guarded
    def entries(self) -> list[StoredEntry]:
        with self._db.connection() as conn:
            return [entry_from_row(r) for r in conn.execute(self._q["entries"]).fetchall()]

    @guarded
    def advance(
        self, name: str, expected: float | None, last_fire: float, fired: int, skipped: int
    ) -> bool:
        params = advance_params(name, expected, last_fire, fired, skipped)
        with self._db.connection() as conn:
            return conn.execute(self._q["advance"], params).rowcount == 1

    @guarded
    def lead(self, holder: str, ttl: float) -> Leadership:
        with self._db.connection() as conn, conn.transaction():
            conn.execute(self._q["lead"], self._params(holder=holder, ttl=ttl))
            return self._read(conn)

    @guarded
    def resign(self, holder: str) -> None:
        with self._db.connection() as conn:
            conn.execute(self._q["resign"], {"holder": holder})

    @guarded
    def leadership(self) -> Leadership:
        with self._db.connection() as conn:
            return self._read(conn)

    def _read(self, conn: Any) -> Leadership:
        holder, expires_at, term, now = conn.execute(
            self._q["leadership"], self._params()
        ).fetchone()
        if term is None:
            return Leadership(None, 0.0, 0)
        return leadership_from_row((holder, expires_at, term), now)

    def close(self) -> None:
        self._db.close()
