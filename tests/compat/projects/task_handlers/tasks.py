# ruff: noqa: UP030, UP032 - Celery's docs text, kept as written
# Celery's user guide (Tasks: custom task classes and handlers, argument checking, automatic
# retry; Configuration: task_annotations) written with the renames only.
import os

import conveyor
from conveyor import Conveyor, Task

app = Conveyor(
    "tasks", broker=os.environ["COMPAT_BROKER_URL"], backend=os.environ["COMPAT_BROKER_URL"]
)


def my_on_failure(self, exc, task_id, args, kwargs, einfo):
    print("Oh no! Task failed: {0!r}".format(exc))


class MyAnnotate:
    def annotate(self, task):
        if task.name.startswith("tasks."):
            return {"rate_limit": "10/s"}


app.conf.task_annotations = [MyAnnotate(), {"*": {"on_failure": my_on_failure}}]


class FailWhaleError(Exception):
    pass


class MyTask(Task):
    def before_start(self, task_id, args, kwargs):
        print(f"Task {task_id} starting with args {args}")

    def on_success(self, retval, task_id, args, kwargs):
        print(f"Task {task_id} succeeded with result: {retval}")

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        print(f"Task {task_id} finished with status: {status}")


@app.task(base=MyTask)
def my_task(x, y):
    return x + y


class FirstTask(conveyor.Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        print("{0!r} failed: {1!r}".format(task_id, exc))


@app.task(base=FirstTask)
def add(x, y):
    raise KeyError()


@app.task
def plus(x, y):
    return x + y


@app.task(typing=False)
def unchecked_add(x, y):
    return x + y


@app.task(
    bind=True, autoretry_for=(FailWhaleError,), retry_kwargs={"max_retries": 3, "countdown": 0.1}
)
def refresh_timeline(self, user):
    print(f"refresh_timeline {user} try {self.request.retries} of {self.max_retries}")
    raise FailWhaleError(user)


class BaseTaskWithRetry(Task):
    autoretry_for = (TypeError,)
    max_retries = 5
    retry_backoff = True
    retry_backoff_max = 700
    retry_jitter = False


@app.task(base=BaseTaskWithRetry)
def with_class_options(x):
    return x
