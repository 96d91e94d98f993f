"""The command line's side of durability and bounds: a worker names the absolute path of the
default `./conveyor.db` at start, and `schedule add` refuses a sub-second interval unless
`--allow-subsecond` is given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ..integration.helpers import HERE as SAMPLE_DIR
from ..integration.helpers import conveyor, wait_until


def test_a_worker_on_the_default_file_prints_its_absolute_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SAMPLE_DIR), env.get("PYTHONPATH", "")])
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-A", "sample_app", "worker", "-P", "solo"],
            cwd=tmp_path,  # no URL anywhere: ./conveyor.db in this directory
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        expected = f"broker and result store: SQLite file {tmp_path / 'conveyor.db'}"
        wait_until(lambda: expected in log.read_text(), 60, "the worker to name its file")
        assert "a relative path: it depends on the working directory" in log.read_text()
        wait_until((tmp_path / "conveyor.db").exists, 60, "the worker to open that very file")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_schedule_add_refuses_a_subsecond_interval_unless_allowed(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    args = ("-A", "sample_app", "schedule", "add", "fast", "sample.add", "--every", "0.5")
    refused = conveyor(db, *args, "--args", "[1, 2]")
    assert refused.returncode == 2
    assert "interval below one second" in refused.stderr and "--allow-subsecond" in refused.stderr
    allowed = conveyor(db, *args, "--args", "[1, 2]", "--allow-subsecond")
    assert allowed.returncode == 0, allowed.stderr
    assert "every 0.5 seconds" in allowed.stdout
    listed = conveyor(db, "-A", "sample_app", "schedule", "list", "--json")
    assert '"allow_subsecond": true' in listed.stdout
