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

    def __str__(self) -> str:
        # Celery's states are plain strings: templates, log lines and f-strings show "SUCCESS",
        # not "TaskState.SUCCESS".
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def ready(self) -> bool:
        """True for the terminal states: the call will not change any more."""
        return self in READY_STATES


READY_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED})

# Celery's `celery.states` names, so `from conveyor import states; states.SUCCESS` and
# `result.state in states.READY_STATES` read as they do in Celery. Each equals its string
# ("SUCCESS" == states.SUCCESS).
PENDING = TaskState.PENDING
RECEIVED = TaskState.RECEIVED
STARTED = TaskState.STARTED
RETRY = TaskState.RETRY
SUCCESS = TaskState.SUCCESS
FAILURE = TaskState.FAILURE
REVOKED = TaskState.REVOKED
ALL_STATES = frozenset(TaskState)
UNREADY_STATES = ALL_STATES - READY_STATES
EXCEPTION_STATES = frozenset({TaskState.RETRY, TaskState.FAILURE, TaskState.REVOKED})
PROPAGATE_STATES = frozenset({TaskState.FAILURE, TaskState.REVOKED})
