"""Celery's spelling of `conveyor.log`: `from conveyor.utils.log import get_task_logger`."""

from logging import getLogger as get_logger

from ..log import TaskContextFilter, get_task_logger

__all__ = ["TaskContextFilter", "get_logger", "get_task_logger"]
