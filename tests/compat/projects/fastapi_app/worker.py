# The worker module of the common FastAPI + Celery layout (testdriven.io, "Asynchronous Tasks
# with FastAPI and Celery"), renamed; the task sleeps half a second per unit, not ten.
import os
import time

from conveyor import Conveyor

celery = Conveyor(__name__)
celery.conf.broker_url = os.environ.get("COMPAT_BROKER_URL", "redis://localhost:6379")
celery.conf.result_backend = os.environ.get("COMPAT_BROKER_URL", "redis://localhost:6379")


@celery.task(name="create_task")
def create_task(task_type):
    time.sleep(int(task_type) * 0.5)
    return True
