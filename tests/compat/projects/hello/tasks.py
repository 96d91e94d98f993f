import os

from conveyor import Conveyor

app = Conveyor(
    "tasks", broker=os.environ["COMPAT_BROKER_URL"], backend=os.environ["COMPAT_BROKER_URL"]
)


@app.task
def add(x, y):
    return x + y
