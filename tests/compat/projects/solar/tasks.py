import os

from conveyor import Conveyor
from conveyor.schedules import solar

app = Conveyor(
    "tasks", broker=os.environ["COMPAT_BROKER_URL"], backend=os.environ["COMPAT_BROKER_URL"]
)

# Celery's "Periodic Tasks" guide, "Solar schedules".
app.conf.beat_schedule = {
    # Executes at sunset in Melbourne
    "add-at-melbourne-sunset": {
        "task": "tasks.add",
        "schedule": solar("sunset", -37.81753, 144.96715),
        "args": (16, 16),
    },
}


@app.task
def add(x, y):
    return x + y
