import os

from .celery import app


@app.task
def record(tag):
    with open(os.environ["COMPAT_RUN_LOG"], "a") as log:
        log.write(tag + "\n")
    return tag
