# Celery's examples/periodic-tasks/myapp.py and the "Entries" section of its periodic-tasks user
# guide, renamed; the intervals are 1 s instead of 10 s and 30 s so that a test sees several fires.
import os

from conveyor import Conveyor
from conveyor.schedules import crontab

app = Conveyor(
    "myapp",
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
)

app.conf.timezone = "UTC"


@app.task
def say(what):
    print(what)


@app.task
def add(x, y):
    z = x + y
    print(z)


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    # Calls say('hello') every second.
    sender.add_periodic_task(1.0, say.s("hello"), name="add every 1")

    # Same signature, an explicit name of its own so that it does not replace the entry above.
    sender.add_periodic_task(2.0, say.s("hello"), name="add every 2")

    # Executes every Monday morning at 7:30 a.m.
    sender.add_periodic_task(
        crontab(hour=7, minute=30, day_of_week=1),
        say.s("Happy Mondays!"),
    )


app.conf.beat_schedule = {
    "add-every-second": {
        "task": "myapp.add",
        "schedule": 1.0,
        "args": (16, 16),
    },
}

if __name__ == "__main__":
    app.start()
