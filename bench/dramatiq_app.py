"""Dramatiq on Redis, for bench/redis_bench.py. No-ops store no result (Dramatiq's default);
`stamp` stores one so that the latency run can read when it started."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ["BENCH_DRAMATIQ_URL"]
broker = RedisBroker(url=URL)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default")
def noop() -> int:
    return 1


@dramatiq.actor(queue_name="default", store_results=True)
def stamp() -> float:
    return time.time()
