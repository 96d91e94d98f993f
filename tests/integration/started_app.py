"""An app module that starts its own worker, as Celery's examples do (`python started_app.py
worker -l INFO -B`), and adds its periodic task when configured."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from conveyor import Conveyor

app = Conveyor("started_app", task_acks_late=True, beat_lease_seconds=2.0)


@app.on_after_configure.connect
def setup_periodic_tasks(sender: Conveyor, **kwargs: Any) -> None:
    sender.add_periodic_task(1.0, tick.s("tick"), name="tick every second")


@app.task
def tick(word: str) -> None:
    with Path(os.environ["STARTED_APP_TICKS"]).open("a") as out:
        out.write(f"{word} {time.time()}\n")


@app.task
def add(x: int, y: int) -> int:
    return x + y


if __name__ == "__main__":
    app.start()
