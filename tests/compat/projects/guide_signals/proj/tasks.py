# The tasks the guide's snippets call, as Celery's next-steps project defines them.
from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task
def fail():
    raise ValueError("fail fails")
