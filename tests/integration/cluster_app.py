"""The app of the cluster-exporter tests: declared queues `work` and `idle` (which stays empty),
a `beat_schedule` entry, and Celery's metric names on."""

from __future__ import annotations

from conveyor import Conveyor

app = Conveyor("cluster")
app.conf.update(
    task_queues=["celery", "work", "idle"],
    task_routes={"cluster.work": {"queue": "work"}},
    beat_schedule={"tick": {"task": "cluster.work", "schedule": 3600.0}},
    metrics_celery_names=True,
)


@app.task(name="cluster.work")
def work() -> None:
    pass
