# ruff: noqa: UP030, UP032  (str.format as the guides write it)
# The tasks of Celery's "Next steps" project and the snippets of its Canvas and Calling
# guides, renamed celery -> conveyor; the errback writes under ERRORS_DIR where the guide
# writes under /var/errors.
import os

from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task
def xsum(numbers):
    return sum(numbers)


@app.task
def tsum(numbers):
    return sum(numbers)


@app.task
def raising_task():
    raise ValueError("something something")


@app.task
def log_result(result):
    print("log_result: {0!r}".format(result))


@app.task
def log_error(request, exc, traceback):
    with open(os.path.join(os.environ["ERRORS_DIR"], request.id), "a") as fh:
        print("--\n\n{0} {1} {2}".format(request.id, exc, traceback), file=fh)


@app.task
def on_chord_error(request, exc, traceback):
    print("Task {0!r} raised error: {1!r}".format(request.id, exc))


@app.task
def on_failed_id(task_id):
    print("failed: {0}".format(task_id))


@app.task
def error_handler(request, exc, traceback):
    print("Task {0} raised exception: {1!r}\n{2!r}".format(request.id, exc, traceback))
