"""Taskiq on Redis (list queue and Redis result backend), for bench/redis_bench.py."""

from __future__ import annotations

import os
import time

from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

URL = os.environ["BENCH_TASKIQ_URL"]
broker = ListQueueBroker(URL).with_result_backend(RedisAsyncResultBackend(URL, prefix_str="res"))


@broker.task(task_name="bench.noop")
def noop() -> int:
    return 1


@broker.task(task_name="bench.stamp")
def stamp() -> float:
    return time.time()
