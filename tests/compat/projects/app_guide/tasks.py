# Celery's application guide (renamed): the main name, config_from_envvar, an abstract task
# overriding __call__, and changing the app's default base class with `app.Task = ...`.
from conveyor import Conveyor, Task

app = Conveyor("tasks")
app.config_from_envvar("CELERY_CONFIG_MODULE")


class DebugTask(Task):
    def __call__(self, *args, **kwargs):
        print("TASK STARTING: {0.name}[{0.request.id}]".format(self))
        return self.run(*args, **kwargs)


@app.task(base=DebugTask)
def add(x, y):
    return x + y


class MyBaseTask(Task):
    queue = "hipri"


app.Task = MyBaseTask


@app.task
def mul(x, y):
    return x * y
