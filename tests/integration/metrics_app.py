"""An app for the worker-metrics tests: a task that succeeds (returning its pid), one that
fails, one that retries once (on its first run) and then succeeds, and one sent delayed.
METRICS_CELERY_NAMES=1 in the environment sets `metrics_celery_names`."""

from __future__ import annotations

import os

from conveyor import Conveyor, Task

app = Conveyor("metrics")
app.conf.metrics_celery_names = os.environ.get("METRICS_CELERY_NAMES") == "1"


@app.task(name="metrics.ok")
def ok(x: int) -> int:
    """The pid of the process that ran it (`x` only tells calls apart)."""
    return os.getpid()


@app.task(name="metrics.fail")
def fail() -> None:
    raise ValueError("no luck")


@app.task(name="metrics.flaky", bind=True)
def flaky(self: Task) -> int:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return self.request.retries


@app.task(name="metrics.later")
def later() -> None:
    """Sent with a countdown: its queue wait counts from when it became due."""
