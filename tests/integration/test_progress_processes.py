"""update_state across real processes: a worker's run (in a process-pool child) reports
progress that another process reads while it runs, and a run paused past its lease can no
longer write progress over the result of the call's new owner."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conveyor import Conveyor

from .helpers import Where, log_of, pause, python, start_worker, stop_worker, wait_until, worker

pytestmark = pytest.mark.every_backend


def send(db: Where, code: str, **extra: str) -> str:
    return python(db, "import sample_app as s\n" + code, **extra).stdout.strip()


def info_of(reader: Conveyor, task_id: str) -> Any:
    res = reader.AsyncResult(task_id)
    return res.info if res.state == "PROGRESS" else None


def test_progress_of_a_child_process_is_read_while_it_runs(db: Where, reader: Conveyor) -> None:
    task_id = send(db, "print(s.progress.delay(4, 0.5).id)")
    seen: list[int] = []

    def step_seen() -> bool:
        info = info_of(reader, task_id)
        if info is not None and info["step"] not in seen:
            seen.append(info["step"])
        return len(seen) >= 2

    with worker(db, "-P", "process", "-c", "1", "-n", "w1@%h") as proc:
        wait_until(step_seen, 60, "two progress steps")
        res = reader.AsyncResult(task_id)
        assert not res.ready() and res.state == "PROGRESS", log_of(proc)
        assert res.get(timeout=60).startswith("w1@")
    assert seen == sorted(seen) and res.state == "SUCCESS" and res.info.startswith("w1@")


def test_a_run_paused_past_its_lease_cannot_overwrite_the_new_owner(
    db: Where, reader: Conveyor
) -> None:
    env = {"SAMPLE_VISIBILITY": "1.5"}
    task_id = send(db, "print(s.progress.delay(8, 0.5).id)")
    stale = start_worker(db, "-P", "threads", "-c", "1", "-n", "stale@%h", **env)
    try:
        wait_until(lambda: info_of(reader, task_id) is not None, 60, "the first run's progress")
        pause(stale, db)  # past its lease: it cannot renew
        with worker(db, "-P", "threads", "-c", "1", "-n", "owner@%h", **env):
            wait_until(lambda: reader.AsyncResult(task_id).ready(), 60, "the new owner's result")
        owned = reader.results.get(task_id)
        assert owned is not None and (owned.worker or "").startswith("owner@")
        stale.send_signal(signal.SIGCONT)  # its run goes on and calls update_state again
        wait_until(lambda: "update_state('PROGRESS') for" in log_of(stale), 30, "the dropped write")
    finally:
        stale.send_signal(signal.SIGCONT)
        stop_worker(stale)
    assert "is no longer held" in log_of(stale) or "a newer run" in log_of(stale)
    assert reader.results.get(task_id) == owned  # SUCCESS of the owner, untouched
    assert reader.AsyncResult(task_id).get(timeout=1).startswith("owner@")
