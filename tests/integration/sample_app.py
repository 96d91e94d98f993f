"""The app the integration tests run in real worker processes (imported as `sample_app`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import Conveyor, Task

app = Conveyor("sample")
app.conf.update(
    visibility_timeout=float(os.environ.get("SAMPLE_VISIBILITY", "30")),
    worker_shutdown_timeout=float(os.environ.get("SAMPLE_GRACE", "30")),
)


@app.task(name="sample.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="sample.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="sample.sleep")
def sleep(seconds: float) -> str:
    time.sleep(seconds)  # the workload itself: a slow task
    return "slept"


@app.task(name="sample.die_on_first_attempt", bind=True)
def die_on_first_attempt(self: Task) -> int:
    """Kills its own process on the first delivery, as a segfault or OOM kill would."""
    if self.request.attempt == 1:
        os._exit(13)
    return self.request.attempt


@app.task(name="sample.slow_on_first_attempt", bind=True)
def slow_on_first_attempt(self: Task, seconds: float) -> int:
    if self.request.attempt == 1:
        time.sleep(seconds)
    return self.request.attempt


@app.task(name="sample.log_run", bind=True)
def log_run(self: Task, path: str, seconds: float) -> int:
    """Appends one line per execution, so a test can count how often a call ran."""
    with Path(path).open("a") as f:
        f.write(f"{self.request.id} {os.getpid()}\n")
    time.sleep(seconds)
    return self.request.attempt
