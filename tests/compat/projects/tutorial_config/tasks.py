# The tutorial's tasks.py configured through a module, as its "Configuration" section shows.
from conveyor import Conveyor

app = Conveyor("tasks")
app.config_from_object("celeryconfig")


@app.task
def add(x, y):
    return x + y
