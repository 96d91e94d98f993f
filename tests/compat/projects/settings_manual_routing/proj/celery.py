import os

from conveyor import Conveyor, Queue

app = Conveyor("proj", broker=os.environ["COMPAT_BROKER_URL"], include=["proj.tasks"])
app.conf.result_backend = os.environ["COMPAT_BROKER_URL"]

# Celery's routing guide, "Manual routing".
app.conf.task_default_queue = "default"
app.conf.task_queues = (
    Queue("default", routing_key="task.#"),
    Queue("feed_tasks", routing_key="feed.#"),
)
app.conf.task_default_exchange = "tasks"
app.conf.task_default_exchange_type = "topic"
app.conf.task_default_routing_key = "task.default"
app.conf.task_routes = {
    "proj.tasks.import_feed": {"queue": "feed_tasks", "routing_key": "feed.import"},
    "proj.tasks.refresh_feed": {"exchange": "tasks", "routing_key": "feed.refresh"},
}
