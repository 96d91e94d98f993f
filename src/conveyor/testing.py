"""Helpers for testing code that uses conveyor (users get these too).

app = Conveyor("proj", broker="memory://")
clock = FakeClock()
worker = solo_worker(app)           # in-process, synchronous
add.delay(2, 2)
worker.run_until_idle()             # runs everything due, no threads, no sleeps
clock.advance(60); worker.run_until_idle()   # runs what a countdown delayed
"""

from __future__ import annotations

from .app import Conveyor
from .clock import FakeClock, SystemClock
from .worker.worker import Worker, default_options


def solo_worker(
    app: Conveyor, queues: tuple[str, ...] | None = None, name: str = "test@local"
) -> Worker:
    """An in-process worker on the solo pool, to drive with `step()` / `run_until_idle()`."""
    overrides: dict[str, object] = {"name": name}
    if queues is not None:
        overrides["queues"] = queues
    return Worker(app, default_options(app, **overrides))


__all__ = ["FakeClock", "SystemClock", "solo_worker"]
