"""An app giving priorities on RabbitMQ's scale: task_queue_max_priority = 255."""

from __future__ import annotations

from conveyor import Conveyor

app = Conveyor("scaled")
app.conf.task_queue_max_priority = 255


@app.task(name="scaled.noop")
def noop() -> None:
    return None
