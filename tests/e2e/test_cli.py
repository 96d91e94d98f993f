"""The `conveyor` command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor import Conveyor

from ..integration.helpers import HERE as SAMPLE_DIR
from ..integration.helpers import conveyor, env_for, wait_until, worker

E2E_DIR = Path(__file__).parent


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


def test_call_wait_result_and_queues(db: Path) -> None:
    with worker(db, "-P", "threads", "-c", "2"):
        done = conveyor(
            db, "-A", "sample_app", "call", "sample.add", "--args", "[20, 22]", "--wait"
        )
        assert done.returncode == 0, done.stderr
        task_id, value = done.stdout.split()
        assert value == "42"
    assert conveyor(db, "-A", "sample_app", "result", task_id).stdout == "42\n"  # as Celery's
    shown = conveyor(db, "-A", "sample_app", "result", "show", task_id)
    assert "SUCCESS" in shown.stdout and "42" in shown.stdout and "sample.add" in shown.stdout
    record = json.loads(conveyor(db, "result", task_id, "--json").stdout)
    assert record["state"] == "SUCCESS" and record["result"] == 42 and record["attempt"] == 1


def test_queues_table_and_json(db: Path) -> None:
    sent = conveyor(
        db, "-A", "sample_app", "call", "sample.add", "--args", "[1, 2]", "--queue", "emails"
    )
    assert sent.returncode == 0, sent.stderr
    conveyor(db, "-A", "sample_app", "call", "sample.add", "--args", "[1, 2]", "--countdown", "600")
    rows = json.loads(conveyor(db, "queues", "--json").stdout)
    by_queue = {r["queue"]: r for r in rows}
    assert 0 <= by_queue["emails"].pop("oldest_ready_age") < 120  # seconds it has waited
    assert by_queue["emails"] == {
        "queue": "emails",
        "ready": 1,
        "scheduled": 0,
        "leased": 0,
        "dead": 0,
    }
    assert by_queue["celery"]["scheduled"] == 1
    table = conveyor(db, "queues").stdout
    assert "emails" in table and "scheduled" in table


def test_purge_asks_first_and_force_skips_the_question(db: Path) -> None:
    for _ in range(3):
        conveyor(db, "-A", "sample_app", "call", "sample.add", "--args", "[1, 1]")
    declined = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [sys.executable, "-m", "conveyor", "purge"],
        input="n\n",
        capture_output=True,
        text=True,
        env=env_for(db),
        cwd=SAMPLE_DIR,
        timeout=60,
    )
    assert "Delete 3 message(s)" in declined.stdout and declined.returncode != 0
    assert json.loads(conveyor(db, "queues", "--json").stdout)[0]["ready"] == 3
    forced = conveyor(db, "purge", "-Q", "celery", "-f")
    assert "purged 3" in forced.stdout
    assert json.loads(conveyor(db, "queues", "--json").stdout) == []


def test_unknown_task_name_is_refused_with_close_matches(db: Path) -> None:
    out = conveyor(db, "-A", "sample_app", "call", "sample.ad")
    assert out.returncode == 2
    assert "unknown task 'sample.ad'" in out.stderr and "'sample.add'" in out.stderr
    assert json.loads(conveyor(db, "queues", "--json").stdout) == []


def test_names_published_by_workers_are_accepted_without_the_app(db: Path) -> None:
    with worker(db, "-P", "threads", "-c", "1"):
        reader = Conveyor("r", broker=f"sqlite:///{db}", set_as_current=False)
        wait_until(reader.broker.workers, 60, "the worker to publish itself")
        out = conveyor(db, "call", "sample.add", "--args", "[2, 2]", "--wait")
        reader.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[1] == "4"


def test_bad_json_arguments_are_refused(db: Path) -> None:
    out = conveyor(db, "-A", "sample_app", "call", "sample.add", "--args", "[1, 2")
    assert out.returncode == 2 and "not JSON" in out.stderr


def test_a_failing_task_makes_call_wait_exit_non_zero(db: Path) -> None:
    with worker(db, "-P", "threads", "-c", "1"):
        out = conveyor(db, "-A", "sample_app", "call", "sample.add", "--args", '[1, "x"]', "--wait")
    assert out.returncode == 1 and "TypeError" in out.stderr


def test_missing_app_module_says_what_to_do(db: Path) -> None:
    out = conveyor(db, "-A", "no_such_module_here", "worker")
    assert out.returncode == 2
    assert "cannot import 'no_such_module_here'" in out.stderr and "PYTHONPATH" in out.stderr


def test_app_module_that_fails_to_import_shows_the_real_error(db: Path) -> None:
    out = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [sys.executable, "-m", "conveyor", "-A", "broken_app", "worker"],
        cwd=E2E_DIR,
        env=env_for(db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "ZeroDivisionError" in out.stderr and "RATIO = 1 / 0" in out.stderr


def test_broker_path_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = conveyor(blocker / "conveyor.db", "queues")
    assert out.returncode == 2
    assert "cannot use the SQLite database" in out.stderr and "is not a directory" in out.stderr


def test_a_missing_database_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "sub"
    out = conveyor(missing / "conveyor.db", "queues")
    assert out.returncode == 2
    assert f"the directory {missing} of the SQLite database conveyor.db does not exist" in (
        out.stderr
    )
    assert f"mkdir -p {missing}" in out.stderr
    assert not missing.parent.exists()  # nothing was created


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-Q", "a:x"], "expected QUEUE[,QUEUE…][:CONCURRENCY[:POOL]]"),
        (["-Q", "a:1:fork"], "unknown pool 'fork'"),
        (["-Q", "a", "-Q", "b", "-c", "2"], "one -c after each -Q"),
        (["-Q", "a,b:1", "-Q", "b:1"], "queue 'b' is in two slot groups"),
        (["-Q", "a=2,b"], "queue weights need --queue-order weighted"),
        (["-P", "solo", "-c", "3"], "the solo pool runs one task at a time"),
        (["-P", "threads", "--max-tasks-per-child", "5"], "process-pool"),
        (["--autoscale", "10,3"], "not supported yet"),
        (["-c", "0"], "0"),
    ],
)
def test_worker_option_errors(db: Path, args: list[str], message: str) -> None:
    out = conveyor(db, "-A", "sample_app", "worker", *args)
    assert out.returncode == 2 and message in out.stderr


def test_worker_writes_and_removes_its_pidfile(db: Path) -> None:
    pidfile = db.parent / "w.pid"
    with worker(db, "-P", "solo", "--pidfile", str(pidfile)) as proc:
        # created (O_EXCL), then written: wait for the pid, not just the file
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 60, "the pid")
        assert int(pidfile.read_text()) == proc.pid
    assert not pidfile.exists()


def test_demo_runs_by_itself_and_summarises(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    begun = time.monotonic()
    out = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [sys.executable, "-m", "conveyor", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert time.monotonic() - begun < 60
    assert "what happened" in out.stdout
    assert "FAILURE: 1" in out.stdout and "SUCCESS: 22" in out.stdout
    assert "sync_calendar" in out.stdout
    assert "failed charge_card[" in out.stdout and "card declined" in out.stdout
    assert str(tmp_path / "conveyor-demo.db") in out.stdout.replace("\n", "")
    assert "results --state FAILURE" in out.stdout.replace("\n", " ")
    url = f"sqlite:///{tmp_path / 'conveyor-demo.db'}"
    history = subprocess.run(  # the history command the demo points to
        [sys.executable, "-m", "conveyor", "-b", url, "results", "--state", "FAILURE", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (failed,) = json.loads(history.stdout)["results"]
    assert failed["task"] == "demo.charge_card" and "card declined" in failed["error"]["message"]
    # the worker's counters, scraped from its /metrics: every delivery received, once each
    text = out.stdout.replace("\n", " ")
    found = re.search(r"received (\d+), succeeded (\d+), failed (\d+), retried (\d+)", text)
    assert found, out.stdout
    received, succeeded, failed_count, retried = map(int, found.groups())
    assert (succeeded, failed_count) == (22, 1) and retried > 0
    assert received == succeeded + failed_count + retried
    # the events the demo points to: the run's task events, published by its worker (-E)
    assert "events --history 20" in text
    events = subprocess.run(
        [sys.executable, "-m", "conveyor", "-b", url, "events", "--json", "--history", "1000",
         "--timeout", "1"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    types = [json.loads(line)["type"] for line in events.stdout.splitlines()]
    assert types.count("task-succeeded") == 22 and types.count("task-failed") == 1
    assert types.count("task-retried") == retried and "worker-online" in types
