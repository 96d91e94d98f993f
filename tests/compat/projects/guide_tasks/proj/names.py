# "Names" in Celery's tasks user guide: an explicit name.
from .celery import app


@app.task(name="sum-of-two-numbers")
def add(x, y):
    return x + y
