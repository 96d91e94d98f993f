"""`conveyor events` tailing the broker's event stream, with real processes on SQLite, Redis and
PostgreSQL: a `conveyor worker` publishes, a `conveyor events --json` prints what it reads."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState

from .helpers import HERE, Where, env_for, python, start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow

WORKLOAD = """
from events_app import ok, fail, flaky
print(ok.delay(7).id, fail.delay().id, flaky.delay().id)
"""


TAIL = (sys.executable, "-m", "conveyor", "-A", "events_app", "events", "--json")


class Tail:
    """A `conveyor -A events_app events --json …` process whose lines are collected as they
    come (a thread reads its stdout)."""

    def __init__(self, db: Where, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*TAIL, *args],
            cwd=HERE,
            env=env_for(db),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def of(self, kind: str, uuid: str | None = None) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == kind and uuid in (None, e.get("uuid"))]

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: its exit code and stderr."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        self._reader.join(5)
        return self.proc.returncode, err


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    made: list[Tail] = []
    yield made
    for tail in made:
        if tail.proc.poll() is None:
            tail.proc.kill()
            tail.proc.communicate(timeout=10)


def stream(db: Where) -> list[dict[str, Any]]:
    """Every event the stream holds, read by a `conveyor events` that stops at once."""
    done = subprocess.run(
        [*TAIL, "--history", "1000", "--timeout", "0"],
        cwd=HERE,
        env=env_for(db),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.every_backend
def test_a_worker_with_task_events_is_followed_live(db: Where, tails: list[Tail]) -> None:
    worker = start_worker(db, "-E", "-P", "threads", "-c", "2", app="events_app")
    try:
        wait_until(lambda: any(e["type"] == "worker-online" for e in stream(db)), 60, "online")
        tail = Tail(db, "--history", "100")
        tails.append(tail)
        wait_until(lambda: tail.of("worker-online"), 30, "the tail to print worker-online")
        ok, fail, flaky = python(db, WORKLOAD).stdout.split()
        wait_until(
            lambda: (
                tail.of("task-succeeded", ok)
                and tail.of("task-failed", fail)
                and tail.of("task-succeeded", flaky)
                and tail.of("worker-heartbeat")
            ),
            60,
            "the workload's events and a heartbeat",
        )
        code, err = tail.interrupt()
    finally:
        stop_worker(worker)
    assert code == 0 and "Traceback" not in err, err
    kinds = [e["type"] for e in tail.events if e.get("uuid") == ok]
    assert kinds == ["task-received", "task-started", "task-succeeded"], tail.events
    (failed,) = tail.of("task-failed", fail)
    assert failed["name"] == "events.fail" and "no luck" in failed["exception"]
    assert "ValueError" in failed["traceback"]
    flaky_kinds = [e["type"] for e in tail.events if e.get("uuid") == flaky]
    run = ["task-received", "task-started"]
    assert flaky_kinds == [*run, "task-retried", *run, "task-succeeded"]
    (online,) = tail.of("worker-online")
    beat = tail.of("worker-heartbeat")[0]
    assert online["hostname"] == beat["hostname"] and online["queues"] == ["celery"]


@pytest.mark.every_backend
def test_without_task_events_a_worker_publishes_only_worker_events(
    db: Where, reader: Conveyor
) -> None:
    worker = start_worker(db, "-P", "threads", app="events_app")
    try:
        (task_id,) = python(db, "from events_app import ok; print(ok.delay(1).id)").stdout.split()
        result = reader.AsyncResult(task_id)
        wait_until(lambda: result.state is TaskState.SUCCESS, 60, "the call to succeed")
    finally:
        stop_worker(worker)
    kinds = {e["type"] for e in stream(db)}
    assert {"worker-online", "worker-offline"} <= kinds
    assert not {k for k in kinds if k.startswith("task-")}


@pytest.mark.every_backend
def test_task_send_sent_event_publishes_task_sent_from_a_short_script(db: Where) -> None:
    code = (
        "from events_app import app, ok\n"
        "app.conf.update(task_send_sent_event=True)\n"
        "print(ok.delay(3).id)\n"  # no close: the atexit flush publishes it
    )
    (task_id,) = python(db, code).stdout.split()
    (sent,) = [e for e in stream(db) if e["type"] == "task-sent"]
    assert sent["uuid"] == task_id and sent["name"] == "events.ok" and sent["queue"] == "celery"
