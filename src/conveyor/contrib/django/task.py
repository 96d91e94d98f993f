"""Sending once the database transaction commits: `task.delay_on_commit(...)` and
`task.apply_async_on_commit(...)`, as Celery's `celery.contrib.django.task.DjangoTask` gives.

Every conveyor Task has both methods (a Celery app gets them from DjangoTask only when
DJANGO_SETTINGS_MODULE is set), so `DjangoTask` here is the Task class itself: code that
names it as a base class keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import ConfigurationError
from ...task import Task

DjangoTask = Task


def on_commit(send: Callable[[], Any], using: str | None = None) -> None:
    """Run `send` when the current transaction of database `using` (Django's default alias
    when None) commits; at once when no transaction is open (autocommit); never if it rolls
    back. Django's `transaction.on_commit`."""
    try:
        from django.db import transaction
    except ImportError:
        raise ConfigurationError(
            "delay_on_commit / apply_async_on_commit wait for a Django transaction, and Django "
            "is not installed: install it, or call delay / apply_async"
        ) from None
    transaction.on_commit(send, using=using)


__all__ = ["DjangoTask", "on_commit"]
