import time

from conveyor.exceptions import SoftTimeLimitExceeded
from conveyor.utils.log import get_task_logger

from .celery import app

logger = get_task_logger(__name__)


@app.task
def add(x, y):
    logger.info(f"Adding {x} + {y}")
    return x + y


@app.task
def mytask():
    try:
        time.sleep(60)  # do_work()
    except SoftTimeLimitExceeded:
        return "cleaned up in a hurry"
    return "done"
