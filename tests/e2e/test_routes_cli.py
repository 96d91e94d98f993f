"""`conveyor routes`, and route checks at worker start, on an app shaped like the seed's."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest

from conveyor import Conveyor

from ..integration.helpers import conveyor, log_of, start_worker, stop_worker, wait_until


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


def test_routes_table_groups_tasks_by_queue_with_counts(db: Path) -> None:
    out = conveyor(db, "-A", "seed_app", "routes")
    assert out.returncode == 0, out.stderr
    assert "17 tasks: 2 → high, 9 → default, 6 → low" in out.stdout
    lines = out.stdout.splitlines()
    assert lines[0] == "high (2 tasks)"
    assert lines[1].split() == [
        "task",
        "priority",
        "rate",
        "limit",
        "time",
        "limits",
        "routed",
        "by",
    ]
    assert any(
        line.split()[:1] == ["sii.sync_f29"]
        and "soft 1500s" in line
        and "task_routes['sii.*']" in line
        for line in lines
    )


def test_routes_json_is_for_scripts(db: Path) -> None:
    out = conveyor(db, "-A", "seed_app", "routes", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 17 and all({"task", "queue"} <= set(row) for row in rows)
    assert Counter(row["queue"] for row in rows) == {"high": 2, "default": 9, "low": 6}


def test_broken_routes_exit_non_zero_listing_every_problem(db: Path) -> None:
    out = conveyor(db, "-A", "seed_app", "routes", SEED_ROUTES="broken")
    assert out.returncode == 1
    assert "17 tasks: 17 → default" in out.stdout
    assert "4 routing problem(s):" in out.stderr
    assert out.stderr.count("matches no registered task") == 4
    assert "Did you mean 'sii.*'?" in out.stderr and "Did you mean 'whatsapp.*'?" in out.stderr


def test_a_worker_with_broken_routes_refuses_to_start(db: Path) -> None:
    out = conveyor(db, "-A", "seed_app", "worker", "-P", "solo", SEED_ROUTES="broken")
    assert out.returncode == 2
    assert "task routing has 4 problem(s) (starting a worker)" in out.stderr
    assert "task_routes_strict=False" in out.stderr


def test_consuming_a_queue_nothing_uses_is_a_warning_naming_the_real_ones(db: Path) -> None:
    proc = start_worker(db, "-P", "threads", "-Q", "high,lwo:2", app="seed_app")
    try:
        wait_until(lambda: "ready" in log_of(proc), 30, "the worker to start")
        log = log_of(proc)
    finally:
        stop_worker(proc)
    assert (
        "consumes queue 'lwo', but no route, task, task_queues or beat_schedule entry uses it"
        in log
    )
    assert "(did you mean 'low'?); queues in use: default, high, low" in log
    assert "consumes queue 'high'" not in log


def test_one_worker_runs_several_slot_groups_under_an_expanded_node_name(db: Path) -> None:
    args = ("-P", "threads", "--queue-order", "weighted", "-Q", "high=3,default:2", "-Q", "low:1")
    proc = start_worker(db, *args, "-n", "fast@%h", app="seed_app")
    reader = Conveyor("reader", broker=f"sqlite:///{db}", set_as_current=False)
    try:
        wait_until(lambda: "ready" in log_of(proc), 30, "the worker to start")
        (info,) = reader.broker.workers()
        assert info.name == f"fast@{socket.gethostname()}"
        assert info.queues == ("high", "default", "low")
        assert info.extra["groups"] == "high=3,default=1:2:threads low:1:threads"
        sent = [
            reader.send_task(name, queue=queue).id
            for name, queue in [
                ("notifications.process_pending", "high"),
                ("calendar.sync_company", "default"),
                ("sii.sync_f29", "low"),
            ]
        ]
        done = reader.results.wait(sent, 30)
        assert {o.queue for o in done.values()} == {"high", "default", "low"}
    finally:
        stop_worker(proc)
        reader.close()
