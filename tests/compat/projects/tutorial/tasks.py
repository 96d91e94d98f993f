# Celery's "First steps with Celery" tasks.py (docs/getting-started/first-steps-with-celery.rst),
# celery -> conveyor, Celery -> Conveyor; the URLs come from the environment.
import os

from conveyor import Conveyor

app = Conveyor(
    "tasks",
    backend=os.environ["COMPAT_BROKER_URL"],
    broker=os.environ["COMPAT_BROKER_URL"],
)


@app.task
def add(x, y):
    return x + y


if __name__ == "__main__":
    app.start()
