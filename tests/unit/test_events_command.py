"""`conveyor events` in process (CliRunner) on an SQLite broker: the human line of each kind
of event, --json, --history, --count, and entries it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conveyor.brokers.sqlite import SqliteBroker
from conveyor.cli import cli
from conveyor.cli.events import human_line
from conveyor.events import (
    ScheduleFired,
    TaskFailed,
    TaskSucceeded,
    WorkerHeartbeat,
    encode_json,
)

T0 = 1_796_000_000.25  # 2026-11-30T00:53:20.250Z

FAILED = TaskFailed(
    hostname="w1@h",
    timestamp=T0,
    uuid="id-1",
    name="proj.add",
    queue="default",
    runtime=0.5,
    exception="ValueError('no\\nluck')",
    traceback="Traceback ...",
)
SUCCEEDED = TaskSucceeded(
    hostname="w1@h", timestamp=T0 + 1, uuid="id-2", name="proj.add", queue="q", runtime=0.01
)


def run(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["-b", f"sqlite:///{path}", "events", *args])
    return result.exit_code, result.stdout, result.stderr


def test_human_lines_show_time_type_host_task_and_key_fields() -> None:
    assert human_line(FAILED) == (
        "2026-11-30T00:53:20.250Z task-failed      w1@h proj.add[id-1] queue=default "
        "runtime=0.500s exception=ValueError('no\\nluck')"
    )
    beat = WorkerHeartbeat(
        hostname="w1@h",
        timestamp=T0,
        pid=7,
        freq=1.0,
        slots=4,
        active=2,
        processed=9,
        succeeded=8,
        failed=1,
        retried=0,
        loadavg=(0.5, 0.25, 0.125),
    )
    assert human_line(beat).endswith(
        "worker-heartbeat w1@h active=2 slots=4 processed=9 failed=1 loadavg=0.5,0.25,0.125"
    )
    fired = ScheduleFired(
        hostname="b@h",
        timestamp=T0,
        entry="nightly",
        name="proj.report",
        uuid="f-1",
        scheduled_for=T0,
    )
    assert human_line(fired).endswith(
        "schedule-fired   b@h proj.report entry=nightly uuid=f-1 "
        "scheduled_for=2026-11-30T00:53:20.250Z"
    )


def test_history_json_and_count(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    broker = SqliteBroker(path)
    broker.publish_events([encode_json(FAILED), encode_json(SUCCEEDED)])
    broker.close()
    code, out, _ = run(path, "--history", "10", "--timeout", "0", "--json")
    assert code == 0
    assert [json.loads(line)["uuid"] for line in out.splitlines()] == ["id-1", "id-2"]
    assert json.loads(out.splitlines()[0])["exception"] == FAILED.exception
    code, out, _ = run(path, "--history", "10", "--count", "1")
    assert code == 0 and out.splitlines() == [human_line(FAILED)]
    code, out, _ = run(path, "--timeout", "0")  # from now: nothing new
    assert code == 0 and out == ""


def test_an_entry_it_cannot_read_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    broker = SqliteBroker(path)
    broker.publish_events([b"not json", b'{"type": "task-exploded"}', encode_json(SUCCEEDED)])
    broker.close()
    code, out, err = run(path, "--history", "10", "--timeout", "0")
    assert code == 0
    assert out.splitlines() == [human_line(SUCCEEDED)]
    warnings = err.splitlines()
    assert len(warnings) == 2 and all(
        w.startswith("warning: skipped stream entry") for w in warnings
    )
    assert "not json" in warnings[0] and "task-exploded" in warnings[1]
