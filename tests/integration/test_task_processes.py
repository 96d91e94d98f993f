"""Task hooks and Celery's call options in a real `conveyor worker` and producer: the hooks run
once each, in the pool child that ran the call; a shadow name shows in the worker's log and
the stored result; a compressed call and a call with ignore_result run; task_annotations from
the app module reach the worker; an argument mismatch is refused at the producer."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.errors import BackendUnavailable
from conveyor.states import TaskState

from .helpers import Where, dir_of, log_of, python, wait_until, worker

pytestmark = pytest.mark.slow

PRODUCE = (
    "from hooks_app import add, fail, flaky, limited\n"
    "print(add.delay(2, 3).id, fail.delay(7).id, flaky.delay().id, limited.delay().id,\n"
    "      add.apply_async((1, 1), shadow='sum.small').id,\n"
    "      add.apply_async((40, 2), compression='gzip').id,\n"
    "      add.apply_async((0, 0), ignore_result=True).id)"
)


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.every_backend
def test_hooks_run_once_in_the_pool_child_and_call_options_reach_the_worker(
    db: Where, reader: Conveyor
) -> None:
    log = dir_of(db) / "hooks.jsonl"
    env = {"HOOKS_LOG": str(log)}
    ids = python(db, PRODUCE, **env).stdout.split()
    add_id, fail_id, flaky_id, limited_id, shadow_id, gzip_id, ignored_id = ids
    stored = [i for i in ids if i != ignored_id]
    with worker(db, "-P", "process", "-c", "2", app="hooks_app", **env) as proc:
        found = reader.results.wait(stored, timeout=90)
        wait_until(  # the call that stores nothing: its hooks say when it ran
            lambda: any(
                e["id"] == ignored_id for e in _entries(log) if e["hook"] == "after_return"
            ),
            60,
            "the ignore_result call to run",
        )
        worker_pid = proc.pid
    assert {i: o.state for i, o in found.items()} == {
        add_id: TaskState.SUCCESS,
        fail_id: TaskState.FAILURE,
        flaky_id: TaskState.SUCCESS,
        limited_id: TaskState.FAILURE,
        shadow_id: TaskState.SUCCESS,
        gzip_id: TaskState.SUCCESS,
    }
    entries = _entries(log)
    assert all(e["pid"] != worker_pid for e in entries)  # every hook ran in a pool child

    def hooks_of(task_id: str) -> list[str]:
        return [
            e["hook"] if e["hook"] != "after_return" else e["status"]
            for e in entries
            if e["id"] == task_id
        ]

    assert hooks_of(add_id) == ["before_start", "on_success", "SUCCESS"]
    assert hooks_of(fail_id) == ["before_start", "on_failure", "FAILURE"]
    assert hooks_of(flaky_id) == [
        "before_start",
        "on_retry",
        "RETRY",
        "before_start",
        "on_success",
        "SUCCESS",
    ]
    assert hooks_of(limited_id) == ["before_start", "on_failure", "FAILURE"]  # annotation
    (failure,) = [e for e in entries if e["id"] == fail_id and e["hook"] == "on_failure"]
    assert (
        failure["exc"] == "ValueError('bad 7')" and 'raise ValueError(f"bad {n}")' in failure["tb"]
    )
    (retried,) = [e for e in entries if e["hook"] == "on_retry"]
    assert retried["exc"] == "OSError('first try')"
    assert [e["retval"] for e in entries if e["id"] == gzip_id and e["hook"] == "on_success"] == [
        42
    ]
    assert [e["hook"] for e in entries if e["id"] == ignored_id][-1] == "after_return"
    assert reader.AsyncResult(ignored_id).state == TaskState.PENDING  # nothing stored
    assert found[shadow_id].task_name == "sum.small"
    assert f"task sum.small[{shadow_id}] success" in log_of(proc)


def test_a_call_with_missing_arguments_fails_at_the_producer(db: Where) -> None:
    with pytest.raises(subprocess.CalledProcessError) as raised:
        python(db, "from hooks_app import add\nadd.delay(8)")
    assert "TypeError: hooks_app.add(x, y): missing a required argument: 'y'" in raised.value.stderr


def test_retry_false_gives_up_on_an_unanswering_broker_at_once_and_a_policy_after_its_waits() -> (
    None
):
    # A Redis URL whose port nobody listens on: every connection is refused.
    dead = "redis://127.0.0.1:1/0"
    app = Conveyor("dead", broker=dead, backend="memory://", set_as_current=False)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"retry/retry_policy allowed 0s"):
        add.apply_async((1, 2), retry=False)
    policy = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
    with pytest.raises(BackendUnavailable, match=r"allowed 0.4s"):
        add.apply_async((1, 2), retry=True, retry_policy=policy)
    assert time.monotonic() - started < 5  # not broker_retry_budget's 10 s
    app.close()


def test_a_call_killed_at_its_hard_time_limit_gets_on_failure_and_after_return(
    db: Where, reader: Conveyor
) -> None:
    # (Thread and solo pools raise TimeLimitExceeded in the task's thread, which runs the
    # hooks itself when it receives it — after the sleep here; not waited for.)
    pool = "process"
    log = dir_of(db) / f"hooks-{pool}.jsonl"
    env = {"HOOKS_LOG": str(log)}
    (stuck_id,) = python(
        db, "from hooks_app import stuck\nprint(stuck.delay().id)", **env
    ).stdout.split()
    with worker(db, "-P", pool, "-c", "1", app="hooks_app", **env) as proc:
        found = reader.results.wait([stuck_id], timeout=60)
        wait_until(
            lambda: log.exists() and any(e["hook"] == "after_return" for e in _entries(log)),
            30,
            "after_return of the call stopped at its time limit",
        )
        worker_pid = proc.pid
    assert found[stuck_id].state == TaskState.FAILURE
    error = found[stuck_id].error
    assert error is not None and error.type == "TimeLimitExceeded"
    hooks = [(str(e["hook"]), str(e.get("exc", e.get("status")))) for e in _entries(log)]
    assert hooks[0][0] == "before_start"
    assert [h for h, _ in hooks[1:]] == ["on_failure", "after_return"]
    assert hooks[1][1].startswith("TimeLimitExceeded(") and hooks[2][1] == "FAILURE"
    pids = {e["hook"]: e["pid"] for e in _entries(log)}
    # The child was killed: the worker's main process ran them, as Celery's does.
    assert pids["on_failure"] == pids["after_return"] == worker_pid != pids["before_start"]
