# Snippets of Celery's "Canvas" user guide (docs/userguide/canvas.rst), renamed only.
from .celery import app


@app.task
def tsum(numbers):
    return sum(numbers)


@app.task
def subtract(x, y):
    return x - y


@app.task
def raising_task():
    raise ValueError("something something")


@app.task
def log_error(request, exc, traceback):
    print("--\n\n{0} {1} {2}".format(request.id, exc, traceback))


@app.task
def on_chord_error(request, exc, traceback):
    print("Task {0!r} raised error: {1!r}".format(request.id, exc))


@app.task
def log_result(value):
    print(f"log_result: {value!r}")
    return value


@app.task
def fail():
    raise ValueError("fail fails")
