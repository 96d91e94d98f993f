"""Procrastinate (a PostgreSQL task queue), for bench/postgres_bench.py. It keeps no results;
a finished job is a row with status 'succeeded'."""

from __future__ import annotations

import os

import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ["BENCH_PROCRASTINATE_URL"])
)


@app.task(name="bench.noop")
def noop() -> int:
    return 1
