"""PostgreSQL result store. Statements live in `sql/postgres_results.sql`; the table comes from
`conveyor/migrations/0002_results.sql`, with indexes for history queries by date, state and
task. Outcomes survive broker restarts, and waiting readers are woken by LISTEN/NOTIFY."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .._postgres import now_param
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import guarded
from ..pgschema import open_backend
from ..sqlfiles import load_sql
from ..states import TaskState
from .base import HistoryPage, HistoryQuery, Outcome, replaces
from .rows import entry_from_row, history_params, outcome_from_row

_READY_STATES = [s.value for s in TaskState if s.ready]
# Waits re-check at least this often even when no NOTIFY comes (a safety net only).
_RECHECK = 5.0


class PostgresResultStore:
    """Result-store contract on one PostgreSQL schema."""

    def __init__(
        self,
        url: str,
        ttl: float | None = 86400.0,
        clock: Clock = SYSTEM_CLOCK,
        auto_migrate: bool = True,
        retry_budget: float | None = 10.0,
    ) -> None:
        opened = open_backend(url, "result store", 4, auto_migrate, retry_budget)
        self.target, self._db, self._listener = opened.target, opened.db, opened.listener
        self.guard = opened.guard
        self._q = load_sql("conveyor.results.sql", "postgres_results.sql")
        self._ttl = ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"<PostgresResultStore {self.target.shown} schema={self.target.schema}>"

    @property
    def schema(self) -> str:
        return self.target.schema

    @guarded
    def put(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        # One statement cannot write a row twice: of several outcomes of one id in a batch
        # (STARTED then SUCCESS), the one a sequence of writes would leave is written.
        final: dict[str, Outcome] = {}
        for o in outcomes:
            kept = final.get(o.task_id)
            if kept is None or replaces(o, kept):
                final[o.task_id] = o
        params = _columns(list(final.values()))
        params.update(
            now=now_param(self._clock),
            ttl=self._ttl,
            channel=self.target.results_channel,
            ready_states=_READY_STATES,
        )
        with self._db.connection() as conn:
            rows = conn.execute(self._q["put"], params).fetchall()
        stored = {r[0] for r in rows}
        return [o.task_id in stored for o in outcomes]

    def get(self, task_id: str) -> Outcome | None:
        return self.get_many([task_id]).get(task_id)

    @guarded
    def get_many(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        if not task_ids:
            return {}
        with self._db.connection() as conn:
            rows = conn.execute(
                self._q["get_many"], {"ids": list(task_ids), "now": now_param(self._clock)}
            ).fetchall()
        return {r[0]: outcome_from_row(r) for r in rows}

    @guarded
    def wait(self, task_ids: Sequence[str], timeout: float | None) -> dict[str, Outcome]:
        wanted = list(dict.fromkeys(task_ids))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            version = self._listener.version()
            ready = {t: o for t, o in self.get_many(wanted).items() if o.state.ready}
            remaining = _RECHECK if deadline is None else deadline - time.monotonic()
            if len(ready) == len(wanted) or remaining <= 0:
                return ready
            self._listener.wait(version, min(remaining, _RECHECK))

    @guarded
    def forget(self, task_ids: Sequence[str]) -> None:
        with self._db.connection() as conn:
            conn.execute(self._q["forget"], {"ids": list(task_ids)})

    @guarded
    def history(self, query: HistoryQuery) -> HistoryPage:
        params = history_params(query, now_param(self._clock))
        with self._db.connection() as conn:
            rows = conn.execute(self._q["history"], params).fetchall()
        return HistoryPage.of([entry_from_row(r) for r in rows], query.limit)

    @guarded
    def join_chord(self, chord_id: str, member_id: str) -> int:
        params = {
            "chord": chord_id,
            "member": member_id,
            "now": now_param(self._clock),
            "ttl": self._ttl,
        }
        with self._db.connection() as conn, conn.transaction(), conn.pipeline():
            for name in ("lock_chord", "reset_chord", "join_chord"):  # one row each: fixed cost
                conn.execute(self._q[name], params)
            (count,) = conn.execute(self._q["count_chord"], params).fetchone() or (0,)
            return int(count)

    def purge_expired(self) -> int:
        with self._db.connection() as conn:
            conn.execute(self._q["purge_expired_joins"], {"now": now_param(self._clock)})
            cur = conn.execute(self._q["purge_expired"], {"now": now_param(self._clock)})
            return cur.rowcount

    def close(self) -> None:
        self._listener.close()
        self._db.close()


def _columns(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The batch as one array per column, for the `unnest` in `put`."""
    errors = [o.error for o in outcomes]
    return {
        "task_id": [o.task_id for o in outcomes],
        "state": [o.state_name for o in outcomes],
        "value": [o.value for o in outcomes],
        "error_type": [e.type if e else None for e in errors],
        "error_module": [e.module if e else None for e in errors],
        "error_message": [e.message if e else None for e in errors],
        "traceback": [e.traceback if e else None for e in errors],
        "task_name": [o.task_name for o in outcomes],
        "queue": [o.queue for o in outcomes],
        "worker": [o.worker for o in outcomes],
        "attempt": [o.attempt for o in outcomes],
        "retries": [o.retries for o in outcomes],
        "started_at": [_float(o.started_at) for o in outcomes],
        "finished_at": [_float(o.finished_at) for o in outcomes],
        "reason": [o.reason for o in outcomes],
        "token": [o.token for o in outcomes],
        "arguments": [o.arguments for o in outcomes],
    }


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
