# Flask's examples/celery/src/task_app/tasks.py, renamed; `app_name` is ours: it shows that a
# task runs inside the Flask application context, which is what FlaskTask.__call__ is for.
import time

from conveyor import shared_task
from conveyor import Task
from flask import current_app


@shared_task(ignore_result=False)
def add(a: int, b: int) -> int:
    return a + b


@shared_task()
def block() -> None:
    time.sleep(5)


@shared_task(bind=True, ignore_result=False)
def process(self: Task, total: int) -> object:
    for i in range(total):
        self.update_state(state="PROGRESS", meta={"current": i + 1, "total": total})
        time.sleep(1)

    return {"current": total, "total": total}


@shared_task(ignore_result=False)
def app_name() -> str:
    return current_app.name
