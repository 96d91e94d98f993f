"""What the SQL result stores share: the row layout of their `get_many` query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import ErrorInfo, HistoryEntry, HistoryQuery, Outcome, state_from_name


def outcome_from_row(r: Sequence[Any]) -> Outcome:
    """A row of (task_id, state, value, error_type, error_module, error_message, traceback,
    task_name, queue, worker, attempt, retries, started_at, finished_at, reason, token,
    arguments)."""
    error = ErrorInfo(r[3], r[5] or "", r[6], r[4] or "builtins") if r[3] is not None else None
    state, custom = state_from_name(r[1])
    return Outcome(
        task_id=r[0],
        state=state,
        custom_state=custom,
        value=r[2],
        error=error,
        task_name=r[7],
        queue=r[8],
        worker=r[9],
        attempt=r[10],
        retries=r[11],
        started_at=r[12],
        finished_at=r[13],
        reason=r[14],
        token=r[15],
        arguments=None if r[16] is None else bytes(r[16]),
    )


def entry_from_row(r: Sequence[Any]) -> HistoryEntry:
    """A `history` row: an outcome's row followed by its updated_at."""
    return HistoryEntry(r[17], outcome_from_row(r))


def history_params(query: HistoryQuery, now: object) -> dict[str, Any]:
    """The `history` statement's parameters (one more row than the page: is there more?)."""
    before = query.before
    return {
        "now": now,
        "state": None if query.state is None else query.state.value,
        "task": query.task_name,
        "since": query.since,
        "before_at": None if before is None else before.stored_at,
        "before_id": None if before is None else before.task_id,
        "limit": query.limit + 1,
    }
