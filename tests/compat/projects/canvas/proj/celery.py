import os

from conveyor import Conveyor

app = Conveyor(
    "proj",
    broker=os.environ["COMPAT_BROKER_URL"],
    backend=os.environ["COMPAT_BROKER_URL"],
    include=["proj.tasks"],
)

# Optional configuration, see the application user guide.
app.conf.update(
    result_expires=3600,
)

if __name__ == "__main__":
    app.start()
