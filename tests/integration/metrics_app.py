"""An app for the worker-metrics tests: a task that succeeds (returning its pid), one that
fails, and one that retries once (on its first run) and then succeeds."""

from __future__ import annotations

import os

from conveyor import Conveyor, Task

app = Conveyor("metrics")


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
