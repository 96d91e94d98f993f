"""What the SQL result stores share: the row layout of their `get_many` query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..states import TaskState
from .base import ErrorInfo, Outcome


def outcome_from_row(r: Sequence[Any]) -> Outcome:
    """A row of (task_id, state, value, error_type, error_module, error_message, traceback,
    task_name, queue, worker, attempt, retries, started_at, finished_at, reason, token)."""
    error = ErrorInfo(r[3], r[5] or "", r[6], r[4] or "builtins") if r[3] is not None else None
    return Outcome(
        task_id=r[0],
        state=TaskState(r[1]),
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
    )
