import os

from conveyor import Conveyor

app = Conveyor(
    "proj",
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
    include=["proj.tasks", "proj.reports"],
)

# Optional configuration, see the application user guide.
app.conf.update(
    result_expires=3600,
)

# The periodic tasks guide's schedule (every second here, so that a test sees it fire).
app.conf.beat_schedule = {
    "add-every-second": {
        "task": "proj.tasks.add",
        "schedule": 1.0,
        "args": (16, 16),
    },
}

if __name__ == "__main__":
    app.start()
