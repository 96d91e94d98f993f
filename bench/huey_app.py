"""The same two tasks on Huey's SQLite storage (the peer measured beside conveyor)."""

from __future__ import annotations

import os
import time

from huey import SqliteHuey

huey = SqliteHuey(filename=os.environ["BENCH_HUEY_DB"])


@huey.task()
def noop() -> int:
    return 1


@huey.task()
def stamp() -> float:
    return time.time()
