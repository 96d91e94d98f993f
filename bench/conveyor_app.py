"""The benchmark's conveyor app: a no-op and a task that reports when it started."""

from __future__ import annotations

import time

from conveyor import Conveyor

app = Conveyor("bench")  # CONVEYOR_BROKER_URL points at the benchmark's file


@app.task(name="bench.noop")
def noop() -> int:
    return 1


@app.task(name="bench.stamp")
def stamp() -> float:
    return time.time()
