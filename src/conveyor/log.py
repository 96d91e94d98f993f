"""Task loggers: `get_task_logger(__name__)` returns a logger whose records carry the running
call's `task_id` and `task_name` (read from the request context the executor sets around each
run), so a format such as `%(task_name)s[%(task_id)s]: %(message)s` works. Outside a task both
are "???", as in Celery."""

from __future__ import annotations

import logging
import threading

from .request import current_request

UNKNOWN = "???"


class TaskContextFilter(logging.Filter):
    """Adds `task_id` and `task_name` to every record it sees (it never drops one). Installed on
    each task logger; add it to a handler to give records from any logger the same fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request()
        task_id = request.id if request is not None else None
        task_name = request.task if request is not None else None
        record.task_id = task_id or UNKNOWN
        record.task_name = task_name or UNKNOWN
        return True


_FILTER = TaskContextFilter()
_installing = threading.Lock()  # two threads asking for one logger at once install it once


def get_task_logger(name: str) -> logging.Logger:
    """The logger `name`, with the task context filter installed (once)."""
    logger = logging.getLogger(name)
    with _installing:
        if not any(isinstance(f, TaskContextFilter) for f in logger.filters):
            logger.addFilter(_FILTER)
    return logger


__all__ = ["UNKNOWN", "TaskContextFilter", "get_task_logger"]
