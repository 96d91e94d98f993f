# The app of Celery's "canvas" user-guide snippets, laid out as the next-steps tutorial lays out a
# project.
import os

from conveyor import Conveyor

app = Conveyor(
    "proj",
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
    include=["proj.tasks", "proj.canvas"],
)

if __name__ == "__main__":
    app.start()
