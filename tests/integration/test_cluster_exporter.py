"""`conveyor metrics` (the cluster exporter) and `conveyor worker --cluster-metrics` as real
processes on every backend: a known mix of messages (ready, delayed, leased, dead) is exported
exactly as `queue_stats()` counts it, a declared but empty queue shows 0, the oldest ready
message's wait is plausible, a running worker is alive, a stored schedule fire shows, and the
calls a producer sends with task_send_sent_event are counted from the event stream."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.brokers.base import Envelope
from conveyor.scheduler.schedule import parse_beat_schedule

from .helpers import (
    HERE,
    Where,
    conveyor,
    dir_of,
    env_for,
    python,
    start_worker,
    stop_worker,
    wait_until,
)
from .test_worker_metrics import Samples, counted, free_port, scrape, value

pytestmark = pytest.mark.slow

STATES = ("ready", "scheduled", "leased", "dead")
SEND_THREE = (
    "from cluster_app import app, work\n"
    "app.conf.task_send_sent_event = True\n"
    "for _ in range(3):\n"
    "    work.delay()\n"
)


def start_exporter(db: Where, port: int) -> subprocess.Popen[str]:
    """A `conveyor -A cluster_app metrics --port PORT` process logging beside `db`."""
    path = dir_of(db) / f"exporter-{time.monotonic_ns()}.log"
    with path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-A", "cluster_app", "metrics", "-l", "info",
             "--port", str(port)],
            cwd=HERE, env=env_for(db), stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    proc.log_path = path  # type: ignore[attr-defined]
    return proc


def serving(port: int, proc: subprocess.Popen[str]) -> bool:
    assert proc.poll() is None, Path(proc.log_path).read_text()  # type: ignore[attr-defined]
    try:
        scrape(port)
    except OSError:
        return False
    return True


def enqueue_mix(reader: Conveyor) -> None:
    """3 ready, 2 delayed by an hour, 1 leased (for 10 minutes), 1 dead, in queue `work`."""
    broker = reader.broker
    broker.enqueue([Envelope(f"r{i}", "work", b"{}") for i in range(3)])
    broker.enqueue([Envelope(f"s{i}", "work", b"{}", delay=3600) for i in range(2)])
    broker.enqueue([Envelope("l", "work", b"{}", priority=9), Envelope("x", "work", b"{}", 8)])
    leased, dying = broker.reserve(["work"], 2, 600.0)
    assert (leased.envelope.id, dying.envelope.id) == ("l", "x")
    assert broker.dead_letter(dying.lease, "test")


def store_a_fire(reader: Conveyor) -> float:
    """Store cluster_app's `tick` entry as its scheduler would, then one fire of it."""
    store = reader.schedule_store
    entries = parse_beat_schedule({"tick": {"task": "cluster.work", "schedule": 3600.0}})
    store.sync({e.name: e.to_json() for e in entries})
    fired_at = time.time()
    assert store.advance("tick", None, fired_at, 1, 0)
    return fired_at


def assert_queues_match(samples: Samples, reader: Conveyor) -> None:
    stats = {s.queue: s for s in reader.broker.queue_stats()}
    assert (stats["work"].ready, stats["work"].scheduled) == (3, 2)
    assert (stats["work"].leased, stats["work"].dead) == (1, 1)
    for state in STATES:
        got = value(samples, "conveyor_queue_messages", queue="work", state=state)
        assert got == getattr(stats["work"], state), state
        assert value(samples, "conveyor_queue_messages", queue="idle", state=state) == 0
        assert value(samples, "conveyor_queue_messages", queue="celery", state=state) == 0
    assert value(samples, "celery_queue_length", queue_name="work") == 3
    assert value(samples, "conveyor_queue_oldest_ready_age_seconds", queue="idle") == 0


@pytest.mark.every_backend
def test_the_exporter_and_a_cluster_metrics_worker_export_the_stores(
    db: Where, reader: Conveyor
) -> None:
    sent = time.time()
    enqueue_mix(reader)
    fired_at = store_a_fire(reader)
    port, worker_port = free_port(), free_port()
    exporter = start_exporter(db, port)
    worker = start_worker(
        db, "-P", "threads", "-c", "1", "-Q", "idle", "--metrics-port", str(worker_port),
        "--cluster-metrics", app="cluster_app",
    )  # fmt: skip
    try:
        wait_until(lambda: serving(port, exporter), 60, "the exporter to serve /metrics")
        wait_until(lambda: serving(worker_port, worker), 60, "the worker to serve /metrics")
        wait_until(
            lambda: value(scrape(port), "conveyor_workers", state="alive") == 1,
            30,
            "the exporter to see the worker alive",
        )
        samples = scrape(port)
        age = value(samples, "conveyor_queue_oldest_ready_age_seconds", queue="work")
        assert 0 < age <= time.time() - sent + 1.0
        assert_queues_match(samples, reader)
        assert value(samples, "conveyor_workers", state="lost") == 0
        assert value(samples, "conveyor_cluster_up") == 1
        assert value(samples, "conveyor_schedule_fires_total", entry="tick") == 1
        assert value(samples, "conveyor_schedule_skipped_total", entry="tick") == 0
        last = value(samples, "conveyor_schedule_last_fire_timestamp_seconds", entry="tick")
        assert last == pytest.approx(fired_at, abs=1e-3)
        # the exporter reports no worker's own series; the worker reports both
        assert not [k for k in samples if k[0].startswith(("conveyor_tasks_", "conveyor_worker_"))]
        both = scrape(worker_port)
        assert_queues_match(both, reader)
        assert value(both, "conveyor_workers", state="alive") == 1
        assert value(both, "conveyor_worker_up") == 1
        assert value(both, "conveyor_schedule_fires_total", entry="tick") == 1
    finally:
        stop_worker(worker)
    try:
        # a worker that stopped is neither alive nor lost
        after = scrape(port)
        assert value(after, "conveyor_workers", state="alive") == 0
        assert value(after, "conveyor_workers", state="lost") == 0
        assert counted(after, "conveyor_tasks_sent_total") == 0  # the mix was not sent by calls
        python(db, SEND_THREE)  # a producer publishing task-sent (task_send_sent_event)
        wait_until(
            lambda: counted(scrape(port), "conveyor_tasks_sent_total") == 3,
            30,
            "the exporter to count 3 sent calls",
        )
        sends = scrape(port)
        assert value(sends, "conveyor_tasks_sent_total", task="cluster.work", queue="work") == 3
        (celery,) = [k for k in sends if k[0] == "celery_task_sent_total"]
        assert dict(celery[1])["name"] == "cluster.work"
        assert dict(celery[1])["queue_name"] == "work" and sends[celery] == 3
    finally:
        stop_worker(exporter)
    assert exporter.returncode == 0


def test_the_exporter_refuses_a_port_in_use_and_a_private_broker(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = conveyor(tmp_path / "c.db", "-A", "cluster_app", "metrics", "--port", str(port))
    assert done.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert "choose a free port with --port" in done.stderr
    done = conveyor(tmp_path / "c.db", "-b", "memory://", "metrics", "--port", str(free_port()))
    assert done.returncode != 0
    assert "memory:// lives inside one process" in done.stderr
