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


#: The parent of every task logger whose own parent would be the root logger, as Celery's
#: `celery.task`: `after_setup_task_logger` hands it over, so one handler or level set on it
#: reaches every task logger. It propagates to the root logger.
TASK_LOGGER = "conveyor.task"


def task_logger() -> logging.Logger:
    """The common parent of task loggers (TASK_LOGGER)."""
    return logging.getLogger(TASK_LOGGER)


def get_task_logger(name: str) -> logging.Logger:
    """The logger `name`, with the task context filter installed (once), and `conveyor.task`
    as its parent when its parent would be the root logger (Celery's rule: a logger under a
    package logger of yours keeps that parent)."""
    logger = logging.getLogger(name)
    with _installing:
        if not any(isinstance(f, TaskContextFilter) for f in logger.filters):
            logger.addFilter(_FILTER)
        if logger.parent is logging.root and name != TASK_LOGGER:
            logger.parent = task_logger()
    return logger


__all__ = ["TASK_LOGGER", "UNKNOWN", "TaskContextFilter", "get_task_logger", "task_logger"]
