"""myapp.py (Celery's examples/app/myapp.py, renamed; the broker comes from the environment)

Usage::

   (window1)$ python myapp.py worker -l INFO

   (window2)$ python
   >>> from myapp import add
   >>> add.delay(16, 16).get()
   32
"""

import os
from time import sleep

from conveyor import Conveyor

app = Conveyor(
    "myapp",
    broker=os.environ["COMPAT_BROKER_URL"],
    # ## add result backend here if needed.
    backend=os.environ["COMPAT_BROKER_URL"],
    task_acks_late=True,
)


@app.task
def add(x, y):
    sleep(0.1)
    return x + y


if __name__ == "__main__":
    app.start()
