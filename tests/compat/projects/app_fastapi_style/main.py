# The shape of the FastAPI + Celery tutorials: the app is `celery` in main.py, built with its
# settings as constructor keywords, and the worker is started with `celery -A main.celery worker`.
# Also Celery's class-based tasks (register_task, a base class with a lazily opened resource)
# and the helpers task modules import (current_task, current_app, celery.utils.time).
import os

from conveyor import Conveyor, Task, current_app, current_task
from conveyor.utils.log import get_task_logger
from conveyor.utils.time import humanize_seconds, maybe_make_aware

celery = Conveyor(
    __name__,
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
    task_track_started=True,
    worker_prefetch_multiplier=1,
    result_expires=3600,
)
logger = get_task_logger(__name__)


class DatabaseTask(Task):
    _db = None

    @property
    def db(self):
        if self._db is None:
            self._db = {"connected": True, "rows": [1, 2, 3]}
        return self._db


@celery.task(name="create_task")
def create_task(task_type):
    logger.info("running %s", current_task.request.id)
    return {"type": task_type, "id": current_task.request.id, "took": humanize_seconds(task_type)}


@celery.task(base=DatabaseTask, bind=True)
def process_rows(self: DatabaseTask):
    return sum(self.db["rows"])


class CustomTask(celery.Task):
    name = "custom.double"

    def run(self, x):
        return x * 2


celery.register_task(CustomTask())


@celery.task
def aware(iso):
    from datetime import datetime

    return maybe_make_aware(datetime.fromisoformat(iso)).isoformat()


@celery.task
def via_current_app(x):
    return current_app.send_task("custom.double", args=[x]).id
