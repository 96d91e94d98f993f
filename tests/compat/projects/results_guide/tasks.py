"""Result snippets of Celery's user guide (tasks, calling), renamed celery -> conveyor only."""

# ruff: noqa: UP031, B007  (the code is kept as Celery's documentation writes it)

import os
import time

from conveyor import Conveyor

app = Conveyor(
    "tasks", broker=os.environ["COMPAT_BROKER_URL"], backend=os.environ["COMPAT_BROKER_URL"]
)


class HttpError(Exception):
    pass


@app.task
def add(x, y):
    return x + y


@app.task(bind=True)
def hello(self, a, b):
    time.sleep(1)
    self.update_state(state="PROGRESS", meta={"progress": 50})
    time.sleep(1)
    self.update_state(state="PROGRESS", meta={"progress": 90})
    time.sleep(1)
    return "hello world: %i" % (a + b)


@app.task(bind=True)
def upload_files(self, filenames):
    for i, file in enumerate(filenames):
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"current": i, "total": len(filenames)})
        time.sleep(0.5)
    return len(filenames)


@app.task
def fetch(url):
    raise HttpError(url)


@app.task(ignore_result=True)
def log_click(x):
    return x


@app.task
def waits_for_another(x):
    return add.delay(x, x).get(timeout=10)
