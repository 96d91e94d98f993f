"""Celery's `celery.utils` spellings: `conveyor.utils.log.get_task_logger`, the time helpers in
`conveyor.utils.time`, and `uuid()` (`from celery.utils import uuid`)."""

from uuid import uuid4 as _uuid4

__all__ = ["gen_unique_id", "uuid"]


def uuid() -> str:
    """A new task id (a random UUID as a string), as `celery.utils.uuid()` gives."""
    return str(_uuid4())


gen_unique_id = uuid  # Celery's older name
