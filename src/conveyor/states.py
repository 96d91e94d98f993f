"""Task states, with Celery's names so dashboards and habits carry over."""

from __future__ import annotations

from enum import Enum


class TaskState(str, Enum):
    """Where one task call stands.

    PENDING is never stored: it is what a reader sees when the store holds nothing for an id
    (unknown, not started yet, forgotten, or expired). RECEIVED is kept for compatibility with
    Celery's vocabulary; conveyor's workers record STARTED when a call begins to run.
    """

    PENDING = "PENDING"
    RECEIVED = "RECEIVED"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"

    @property
    def ready(self) -> bool:
        """True for the terminal states: the call will not change any more."""
        return self in READY_STATES


READY_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED})
