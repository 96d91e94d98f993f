import os

from conveyor import Conveyor, Exchange, Queue

app = Conveyor("proj", broker=os.environ["COMPAT_BROKER_URL"], include=["proj.tasks"])
app.conf.result_backend = os.environ["COMPAT_BROKER_URL"]

# Celery's "RabbitMQ Message Priorities" configuration.
app.conf.task_queues = [
    Queue("tasks", Exchange("tasks"), routing_key="tasks", queue_arguments={"x-max-priority": 10}),
]
app.conf.task_queue_max_priority = 10
app.conf.task_default_priority = 5
app.conf.task_default_queue = "tasks"
