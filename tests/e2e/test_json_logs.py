"""`conveyor worker --log-format json`: every line the worker writes to stderr is one JSON
object, and the line about each settled call carries the call's fields."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor

from ..integration.helpers import HERE, env_for, log_of, python, wait_until, worker

SETTLED_FIELDS = {"task_id", "task_name", "queue", "attempt", "state", "runtime", "worker"}
SEND = "from jsonlog_app import greet, fail; print(greet.delay('ada').id); print(fail.delay().id)"


def _lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON (json.loads fails the test on any line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line]


@pytest.mark.parametrize("pool", ["threads", "process", "solo"])
def test_every_worker_line_is_json_and_settled_calls_carry_their_fields(
    tmp_path: Path, pool: str
) -> None:
    db = tmp_path / "conveyor.db"
    reader = Conveyor("reader", broker=f"sqlite:///{db}")
    ok_id, fail_id = python(db, SEND).stdout.split()
    args = ("--log-format", "json", "-P", pool, "-c", "1")
    with worker(db, *args, app="jsonlog_app") as proc:
        wait_until(lambda: len(reader.results.wait([ok_id, fail_id], timeout=1.0)) == 2, 60, "2")
        wait_until(lambda: fail_id in log_of(proc), 30, "the failure's log line")
    lines = _lines(log_of(proc))
    settled = {line["task_id"]: line for line in lines if line.keys() >= SETTLED_FIELDS}
    assert settled[ok_id]["state"] == "SUCCESS"
    assert settled[ok_id]["task_name"] == "jsonlog.greet"
    assert settled[ok_id]["queue"] == "celery"
    assert settled[ok_id]["attempt"] == 1
    assert settled[fail_id]["state"] == "FAILURE"
    assert settled[fail_id]["level"] == "ERROR"
    assert "no luck" in settled[fail_id]["message"]
    assert all(isinstance(line["runtime"], float) for line in settled.values())
    greeting = next(line for line in lines if line["logger"] == "jsonlog_app.tasks")
    assert greeting["task_id"] == ok_id and greeting["task_name"] == "jsonlog.greet"
    assert "hunter2" not in log_of(proc)


def test_the_text_format_stays_the_default(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    reader = Conveyor("reader", broker=f"sqlite:///{db}")
    ok_id, fail_id = python(db, SEND).stdout.split()
    with worker(db, "-P", "threads", "-c", "1", app="jsonlog_app") as proc:
        wait_until(lambda: len(reader.results.wait([ok_id, fail_id], timeout=1.0)) == 2, 60, "2")
        wait_until(lambda: fail_id in log_of(proc), 30, "the failure's log line")
    text = log_of(proc)
    assert f"task jsonlog.greet[{ok_id}] success attempt=1 runtime=" in text
    assert not text.lstrip().startswith("{")


def test_process_children_write_json_to_the_workers_log_file(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    logfile = tmp_path / "worker.json.log"
    reader = Conveyor("reader", broker=f"sqlite:///{db}")
    ok_id, fail_id = python(db, SEND).stdout.split()
    args = ("--log-format", "json", "-P", "process", "-c", "1", "-f", str(logfile))
    with worker(db, *args, app="jsonlog_app"):
        wait_until(lambda: len(reader.results.wait([ok_id, fail_id], timeout=1.0)) == 2, 60, "2")
        wait_until(lambda: fail_id in logfile.read_text(), 30, "the failure's log line")
    lines = _lines(logfile.read_text())
    greeting = next(line for line in lines if line["logger"] == "jsonlog_app.tasks")
    assert greeting["task_id"] == ok_id
    assert "hunter2" not in logfile.read_text()


def test_beat_writes_json_lines_too(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    logfile = tmp_path / "beat.log"
    args = ["-A", "jsonlog_app", "beat", "-l", "info", "--log-format", "json"]
    with logfile.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", *args],
            cwd=HERE,
            env=env_for(db),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "conveyor beat" in logfile.read_text(), 60, "beat's start-up line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = _lines(logfile.read_text())
    assert any(line["message"].startswith("conveyor beat ") for line in lines)
    assert all(line["logger"].startswith("conveyor") for line in lines)
