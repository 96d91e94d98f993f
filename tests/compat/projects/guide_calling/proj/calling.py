# Snippets of Celery's "Calling Tasks" user guide (docs/userguide/calling.rst), renamed only.
import time

from .celery import app


@app.task
def error_handler(request, exc, traceback):
    print("Task {0} raised exception: {1!r}\n{2!r}".format(request.id, exc, traceback))


@app.task
def broken(x, y):
    raise ValueError(f"cannot add {x} and {y}")


@app.task
def other_task(value):
    print(f"other_task got {value}")
    return value


# -- On message
@app.task(bind=True)
def hello(self, a, b):
    time.sleep(1)
    self.update_state(state="PROGRESS", meta={"progress": 50})
    time.sleep(1)
    self.update_state(state="PROGRESS", meta={"progress": 90})
    time.sleep(1)
    return "hello world: %i" % (a + b)
