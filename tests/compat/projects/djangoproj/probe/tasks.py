"""Tasks that report on the worker process they run in (not part of Celery's example)."""

import os

from django.apps import apps
from django.db import connection

from conveyor import shared_task


@shared_task
def connection_state():
    """Whether this task started without an open database connection (closed by the worker
    before the task), then opens one, so the next task can check it was closed again."""
    fresh = connection.connection is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"fresh": fresh, "pid": os.getpid(), "django_ready": apps.ready}
