# Celery's examples/app/myapp.py, renamed; the URLs come from the environment and the task sleeps
# 1 s instead of 10.
"""myapp.py

Usage::

   (window1)$ python myapp.py worker -l INFO

   (window2)$ python
   >>> from myapp import add
   >>> add.delay(16, 16).get()
   32

You can also specify the app to use with the `conveyor` command, using the `-A` / `--app`
option::

    $ conveyor -A myapp worker -l INFO

With the `-A myproj` argument the program will search for an app instance in the module
``myproj``.  You can also specify an explicit name using the fully qualified form::

    $ conveyor -A myapp:app worker -l INFO

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
    sleep(1)
    return x + y


if __name__ == "__main__":
    app.start()
