"""Signals in a real `conveyor worker` (SQLite, Redis, PostgreSQL; process, thread, solo pools):
every task signal fires once per run, with its documented arguments, in the process that ran
the task (a pool child for `-P process`); worker_process_init and worker_process_shutdown fire
once in each child; a raising receiver changes no outcome; task
loggers in a child carry the task's id and name."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState

from .helpers import HERE, Where, dir_of, env_for, python, wait_until, worker

pytestmark = pytest.mark.slow

PRODUCE = (
    "from signals_app import add, fail, flaky\n"
    "print(add.delay(2, 3).id, fail.delay(7).id, flaky.delay().id)"
)


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _of(entries: list[dict[str, Any]], signal: str, task_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("signal") == signal and e.get("task_id") == task_id]


@pytest.mark.every_backend
@pytest.mark.parametrize("pool", ["process", "threads", "solo"])
def test_task_and_process_signals_fire_where_the_task_runs(
    db: Where, reader: Conveyor, pool: str
) -> None:
    log = dir_of(db) / f"signals-{pool}.jsonl"
    env = {"SIGNALS_LOG": str(log)}
    ids = python(db, PRODUCE, **env).stdout.split()
    add_id, fail_id, flaky_id = ids
    slots = "1" if pool == "solo" else "2"
    with worker(db, "-P", pool, "-c", slots, app="signals_app", **env) as proc:
        found = reader.results.wait(ids, timeout=90)
        worker_pid = proc.pid
    assert {i: o.state for i, o in found.items()} == {
        add_id: TaskState.SUCCESS,
        fail_id: TaskState.FAILURE,
        flaky_id: TaskState.SUCCESS,  # the raising prerun receiver changed nothing
    }
    entries = _entries(log)
    children = _process_signals(entries, pool, worker_pid)
    _task_signals(entries, ids, children)
    (logged,) = [e for e in entries if e.get("log") == "adding"]
    assert (logged["task_id"], logged["task_name"]) == (add_id, "signals.add")
    assert logged["pid"] in children
    worker_log = "\n".join(p.read_text() for p in dir_of(db).glob("worker-*.log"))
    assert "receiver signals_app.broken raised RuntimeError('broken receiver')" in worker_log


def test_beat_sends_beat_init_once(db: Where) -> None:
    log = dir_of(db) / "signals-beat.jsonl"
    env = {"SIGNALS_LOG": str(log)}
    with (dir_of(db) / "beat.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-A", "signals_app", "beat", "-l", "info"],
            cwd=HERE,
            env=env_for(db, **env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: log.exists() and "beat_init" in log.read_text(), 60, "beat_init")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    entries = _entries(log)
    (init,) = [e for e in entries if e.get("signal") == "beat_init"]
    assert init["pid"] == proc.pid and init["sender"] == "Beat" and init["args"] == []
    assert [e["signal"] for e in entries] == ["after_setup_logger", "beat_init"]


def _process_signals(entries: list[dict[str, Any]], pool: str, worker_pid: int) -> set[int]:
    """Checks the process and logging signals; returns the ids of the processes that ran
    tasks."""
    inits = [e["pid"] for e in entries if e.get("signal") == "worker_process_init"]
    shutdowns = [e for e in entries if e.get("signal") == "worker_process_shutdown"]
    if pool == "process":
        assert len(inits) == 2 and len(set(inits)) == 2 and worker_pid not in inits  # per child
        assert sorted(e["pid"] for e in shutdowns) == sorted(inits)
        assert all(e["args"] == ["exitcode", "pid"] and e["value_exitcode"] == 0 for e in shutdowns)
        children = set(inits)
    else:  # no pool children: the task signals fire in the worker itself
        assert inits == [] and shutdowns == []
        children = {worker_pid}

    (logging_set_up,) = [e for e in entries if e.get("signal") == "after_setup_logger"]
    assert logging_set_up["pid"] == worker_pid  # the app was loaded before logging was set up
    assert logging_set_up["args"] == ["colorize", "format", "logfile", "logger", "loglevel"]
    signals = [e["signal"] for e in entries if "signal" in e]
    in_worker = [s for e in entries if e.get("pid") == worker_pid and (s := e.get("signal"))]
    assert in_worker[0] == "after_setup_logger" and in_worker[-1] == "worker_shutdown"
    assert signals.count("worker_init") == 1 and signals.count("worker_shutdown") == 1
    (init,) = [e for e in entries if e.get("signal") == "worker_init"]
    assert init["pid"] == worker_pid and init["sender"] == "Worker"
    assert signals.index("worker_init") < signals.index("task_prerun")
    return children


def _task_signals(entries: list[dict[str, Any]], ids: list[str], children: set[int]) -> None:
    """Each task signal once per run, with its documented arguments, where the task ran."""
    add_id, fail_id, flaky_id = ids
    task_args = ["args", "kwargs", "task", "task_id"]
    (pre,) = _of(entries, "task_prerun", add_id)
    successes = [e for e in entries if e.get("signal") == "task_success"]
    (success,) = [e for e in successes if e["value_result"] == 5]  # add's (flaky returns 1)
    (post,) = _of(entries, "task_postrun", add_id)
    assert pre["args"] == task_args and pre["sender"] == "signals.add" and pre["task_is_sender"]
    assert pre["value_args"] == [2, 3] and pre["value_kwargs"] == {}
    assert success["args"] == ["result"] and success["value_result"] == 5
    assert post["args"] == sorted([*task_args, "retval", "state"])
    assert (post["value_retval"], post["value_state"]) == (5, "SUCCESS")
    assert {pre["pid"], success["pid"], post["pid"]} <= children
    assert pre["pid"] == post["pid"]

    (failure,) = _of(entries, "task_failure", fail_id)
    assert failure["args"] == ["args", "einfo", "exception", "kwargs", "task_id", "traceback"]
    assert (failure["sender"], failure["value_exception"]) == ("signals.fail", "ValueError")
    assert failure["einfo_type"] == "ValueError" and failure["pid"] in children
    (failed_post,) = _of(entries, "task_postrun", fail_id)
    assert failed_post["value_state"] == "FAILURE"

    (retry,) = _of(entries, "task_retry", flaky_id)
    assert retry["args"] == ["einfo", "reason", "request"] and retry["value_reason"] == "Retry"
    assert retry["pid"] in children
    assert [e["value_state"] for e in _of(entries, "task_postrun", flaky_id)] == [
        "RETRY",
        "SUCCESS",
    ]
    assert len(_of(entries, "task_prerun", flaky_id)) == 2  # one per run
    assert sorted(e["value_result"] for e in successes) == [1, 5]  # add and flaky, once each


def test_every_recycled_child_sends_its_own_process_signals(db: Where, reader: Conveyor) -> None:
    log = dir_of(db) / "signals-recycled.jsonl"
    env = {"SIGNALS_LOG": str(log)}
    code = "from signals_app import add\nfor i in range(3): print(add.delay(i, i).id)"
    ids = python(db, code, **env).stdout.split()
    with worker(
        db, "-P", "process", "-c", "1", "--max-tasks-per-child", "1", app="signals_app", **env
    ):
        found = reader.results.wait(ids, timeout=90)
    assert {o.state for o in found.values()} == {TaskState.SUCCESS}
    entries = [e for e in _entries(log) if "signal" in e]
    ran = {i: e["pid"] for i in ids for e in _of(entries, "task_prerun", i)}
    assert len(set(ran.values())) == 3  # one child per call
    for pid in ran.values():
        mine = [e["signal"] for e in entries if e["pid"] == pid]
        assert mine == [
            "worker_process_init",
            "task_prerun",
            "task_success",
            "task_postrun",
            "worker_process_shutdown",
        ]


EXPIRING = (
    "import time\n"
    "from signals_app import add\n"
    "ok, late = add.delay(2, 3), add.apply_async((4, 4), expires=0.5)\n"
    "time.sleep(1.0)  # past its expiry before any worker takes it\n"
    "print(ok.id, late.id)"
)


def test_worker_side_signals_fire_once_each_in_the_worker(db: Where, reader: Conveyor) -> None:
    """The publish signals in the producer; task_received, task_revoked (an expired call, also
    heard by the issue's `logger.warning(f"Task revoked: {request.id}")` handler),
    worker_ready, heartbeat_sent and worker_shutting_down in the worker's main process."""
    log = dir_of(db) / "signals-worker.jsonl"
    env = {"SIGNALS_LOG": str(log), "SIGNALS_LEASE": "3"}
    producer = python(db, EXPIRING, **env)
    ok_id, late_id = producer.stdout.split()
    with worker(db, "-P", "threads", "-c", "1", app="signals_app", **env) as proc:
        found = reader.results.wait([ok_id, late_id], timeout=90)
        wait_until(lambda: "heartbeat_sent" in log.read_text(), 60, "a heartbeat")
        worker_pid = proc.pid
    assert (found[ok_id].state, found[late_id].state) == (TaskState.SUCCESS, TaskState.REVOKED)
    entries = [e for e in _entries(log) if "signal" in e]
    _publish_signals(entries, [ok_id, late_id], worker_pid)
    for task_id, args in ((ok_id, [2, 3]), (late_id, [4, 4])):
        (received,) = _of(entries, "task_received", task_id)
        assert received["pid"] == worker_pid and received["sender"] == "Worker"
        assert received["args"] == ["request"]
        assert received["request"][:3] == ["signals.add", args, {}]
    (revoked,) = [e for e in entries if e["signal"] == "task_revoked"]
    assert revoked["pid"] == worker_pid and revoked["task_id"] == late_id
    assert revoked["args"] == ["expired", "request", "signum", "terminated"]
    assert (revoked["sender"], revoked["value_expired"], revoked["value_terminated"]) == (
        "signals.add",
        True,
        False,
    )
    assert revoked["value_signum"] is None
    (seeded,) = [e for e in _entries(log) if e.get("log", "").startswith("Task revoked")]
    assert seeded["log"] == f"Task revoked: {late_id}" and seeded["pid"] == worker_pid
    in_worker = [e for e in entries if e["pid"] == worker_pid]
    names = [e["signal"] for e in in_worker]
    assert names.count("worker_ready") == 1 and names.count("worker_shutting_down") == 1
    assert names.index("worker_init") < names.index("worker_ready")
    assert names.index("worker_shutting_down") < names.index("worker_shutdown")
    beats = [e for e in in_worker if e["signal"] == "heartbeat_sent"]
    assert beats and all(e["sender"] == "Worker" and e["args"] == [] for e in beats)
    (ready,) = [e for e in in_worker if e["signal"] == "worker_ready"]
    assert ready["sender"] == "Worker" and ready["args"] == []
    (down,) = [e for e in in_worker if e["signal"] == "worker_shutting_down"]
    assert down["args"] == ["exitcode", "how", "sig"] and "@" in down["sender"]
    assert (down["value_sig"], down["value_how"], down["value_exitcode"]) == ("SIGTERM", "Warm", 0)


def _publish_signals(entries: list[dict[str, Any]], ids: list[str], worker_pid: int) -> None:
    """One before_task_publish and one after_task_publish per call, in the producer."""
    for name, args in (
        ("before_task_publish", DOCUMENTED_PUBLISH),
        ("after_task_publish", ["body", "exchange", "headers", "routing_key"]),
    ):
        sent = [e for e in entries if e["signal"] == name]
        assert sorted(e["task_id"] for e in sent) == sorted(ids)
        assert all(e["pid"] != worker_pid and e["sender"] == "signals.add" for e in sent)
        assert all(e["args"] == args and e["value_routing_key"] == "celery" for e in sent)


DOCUMENTED_PUBLISH = sorted(
    ["body", "exchange", "routing_key", "headers", "properties", "declare", "retry_policy"]
)
