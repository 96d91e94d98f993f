"""The benchmark's conveyor app: a no-op and a task that reports when it started."""

from __future__ import annotations

import sys
import time

from conveyor import Conveyor

app = Conveyor("bench")  # CONVEYOR_BROKER_URL points at the benchmark's file


@app.task(name="bench.noop")
def noop() -> int:
    return 1


@app.task(name="bench.stamp")
def stamp() -> float:
    return time.time()


def worker_commands(count: int = 2) -> list[list[str]]:
    """The benchmark's conveyor workers: `count` solo processes fetching 100 at a time (the
    explicit choice for tiny tasks, docs/performance.md)."""
    return [
        [sys.executable, "-m", "conveyor", "-A", "conveyor_app", "worker", "-P", "solo",
         "--prefetch-multiplier", "100", "-n", f"bench{i}@%h", "-l", "error"]
        for i in range(count)
    ]  # fmt: skip


def finished(sent: int) -> int:
    """How many of `sent` calls are settled: a message leaves once its outcome is stored."""
    stats = app.broker.queue_stats()
    return sent - sum(s.ready + s.scheduled + s.leased for s in stats)
