"""Celery on Redis (broker and result backend), for bench/redis_bench.py."""

from __future__ import annotations

import os
import time

from celery import Celery

URL = os.environ["BENCH_CELERY_URL"]
app = Celery("bench", broker=URL, backend=URL)
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)


@app.task(name="bench.noop")
def noop() -> int:
    return 1


@app.task(name="bench.stamp")
def stamp() -> float:
    return time.time()
