"""Broker restarts: a Redis server (appendonly, appendfsync always) and a PostgreSQL server of
the test's own are killed and started again three times during a 2,000-task run. Every enqueue
the producer saw acknowledged runs; the producer gets errors, not silent drops, while the
server is down; the worker reports "not consuming" while disconnected and consumes again
within 10 s of the server's return, by itself. The servers' URLs carry a password, which
must never show in logs, errors or health reports."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState
from conveyor.worker.health import read as read_health

from .helpers import HERE, Remote, env_for, log_of, start_worker, stop_worker, wait_until
from .servers import SECRET, PostgresServer, RedisServer

pytestmark = pytest.mark.slow

TASKS = 2000
RESTARTS = 3
PRODUCER = """
import sys, time
import sample_app as s
from conveyor.errors import BackendUnavailable

s.app.conf.broker_retry_budget = 0.5
out = open(sys.argv[1], "a", buffering=1)
acked = i = 0
while acked < int(sys.argv[2]):
    i += 1
    try:
        r = s.add.delay(i, 1)
    except BackendUnavailable as exc:
        out.write("ERR " + " ".join(str(exc).split()) + "\\n")
        continue
    out.write(f"OK {r.id}\\n")
    acked += 1
    time.sleep(0.004)  # pacing the load so that the run spans the restarts
"""


def lines(path: Path, kind: str) -> list[str]:
    if not path.exists():
        return []
    return [ln.split(" ", 1)[1] for ln in path.read_text().splitlines() if ln.startswith(kind)]


def consuming(path: Path) -> bool | None:
    try:
        return read_health(path).consuming
    except (OSError, ValueError):
        return None


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_restarts_lose_no_acknowledged_enqueue(kind: str, tmp_path: Path) -> None:
    server: RedisServer | PostgresServer
    if kind == "redis":
        server = RedisServer(tmp_path)
        url = server.url
    else:
        server = PostgresServer()
        server.init()
        url = server.url + "?schema=restarts"
    server.start()
    place = Remote(url, tmp_path)
    out, health = tmp_path / "producer.txt", tmp_path / "worker.health"
    worker = start_worker(place, "-P", "process", "-c", "2", "--health-file", str(health))
    reader = Conveyor("reader", broker=url, set_as_current=False)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(out), str(TASKS)], cwd=HERE, env=env_for(place)
    )
    resumed: list[float] = []

    def at_least(tag: str, n: int) -> bool:
        return len(lines(out, tag)) >= n

    def consuming_past(done_before: int) -> bool:
        return bool(consuming(health)) and done(reader, lines(out, "OK")) > done_before

    try:
        wait_until(lambda: consuming(health), 60, "the worker to consume")
        for n in range(1, RESTARTS + 1):
            wait_until(functools.partial(at_least, "OK", n * 450), 120, f"{n * 450} enqueues")
            errors_before = len(lines(out, "ERR"))
            server.kill()
            wait_until(
                functools.partial(at_least, "ERR", errors_before + 1), 60, "a producer error"
            )
            wait_until(lambda: consuming(health) is False, 30, "the worker to say it is not")
            server.start()
            back = time.monotonic()
            done_before = done(reader, lines(out, "OK"))
            wait_until(
                functools.partial(consuming_past, done_before),
                30,
                "the worker to consume again",
            )
            resumed.append(time.monotonic() - back)
        assert producer.wait(180) == 0
        acked = lines(out, "OK")
        wait_until(lambda: done(reader, acked) == len(acked), 180, "every acknowledged call")
    finally:
        producer.kill()
        stop_worker(worker)
        reader.close()
        server.stop()
    errors = lines(out, "ERR")
    print(
        f"\n{kind}: {len(acked)} acknowledged, {len(errors)} refused while down, "
        f"resumed after {', '.join(f'{s:.1f}s' for s in resumed)}"
    )
    assert len(acked) == TASKS and len(set(acked)) == TASKS
    assert max(resumed) < 10.0, log_of(worker)[-3000:]
    assert all("did not answer" in e for e in errors)
    for shown in (log_of(worker), " ".join(errors), health.read_text()):
        assert SECRET not in shown and "***@127.0.0.1" in log_of(worker)
    assert read_health(health).detail == "shutting down"  # the last report: a clean stop


def done(reader: Conveyor, ids: list[str]) -> int:
    outcomes = reader.results.get_many(ids)
    return sum(o.state is TaskState.SUCCESS for o in outcomes.values())
