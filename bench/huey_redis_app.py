"""Huey on Redis, for bench/redis_bench.py."""

from __future__ import annotations

import os
import time

from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ["BENCH_HUEY_URL"])


@huey.task()
def noop() -> int:
    return 1


@huey.task()
def stamp() -> float:
    return time.time()
