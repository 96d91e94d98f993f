"""Celery's daemon forms for real: `worker --detach --pidfile --logfile`, `conveyor multi
start|stop|stopwait|restart`, and a detached worker's log in Celery's format with the worker's
--soft-time-limit applied (SQLite)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.cli.files import read_pid

from .helpers import Where, conveyor, wait_until

pytestmark = pytest.mark.slow


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # exited; reaped by whoever adopted it


def test_a_detached_worker_logs_as_celery_and_applies_the_soft_time_limit(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    pidfile, logfile = tmp_path / "%n.pid", tmp_path / "%n%I.log"
    started = conveyor(
        db, "-A", "cli_app", "worker", "--detach", "-n", "d1@%h", "-l", "INFO", "-P", "threads",
        "-O", "fair", "--without-heartbeat", "--soft-time-limit", "0.5",
        f"--pidfile={pidfile}", f"--logfile={logfile}",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = read_pid(tmp_path / "d1.pid")
    assert pid is not None and f"pid {pid}" in started.stderr
    log = tmp_path / "d1.log"
    try:
        assert reader.send_task("cli.chatty", args=("hi",)).get(timeout=60) == "hi"
        assert reader.send_task("cli.nap", args=(30,)).get(timeout=60) == "interrupted"
        text = log.read_text()
        stamp = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: INFO/[\w-]+\]"
        assert re.search(stamp + r" plain logger says hi$", text, re.M), text
        assert re.search(stamp + r" cli\.chatty\[[0-9a-f-]{36}\]: task logger says hi$", text, re.M)
        assert f"worker d1@{socket.gethostname()} ready" in text
    finally:
        os.kill(pid, 15)
    wait_until(lambda: _gone(pid), 60, "the detached worker to stop")
    assert not (tmp_path / "d1.pid").exists()  # removed at its clean exit


def test_detach_refuses_a_pidfile_held_by_a_live_process(db: Where, tmp_path: Path) -> None:
    pidfile = tmp_path / "held.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    refused = conveyor(db, "-A", "cli_app", "worker", "--detach", f"--pidfile={pidfile}")
    assert refused.returncode == 1 and "which is running" in refused.stderr
    assert pidfile.read_text() == f"{os.getpid()}\n"


def test_multi_starts_stops_and_restarts_named_workers(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    files = (f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n%I.log")
    nodes = ("w1", "w2", "-A", "cli_app", "-l", "INFO", "-P", "threads", "-c:w2", "2", *files)
    host = socket.gethostname()
    started = conveyor(db, "multi", "start", *nodes)
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"\t> w1@{host}: OK\n\t> w2@{host}: OK\n" in started.stdout
    pids = {name: read_pid(tmp_path / f"{name}.pid") for name in ("w1", "w2")}
    assert None not in pids.values()
    wait_until(lambda: {w.name for w in reader.broker.workers()} >= {f"w1@{host}", f"w2@{host}"},
               60, "both workers")  # fmt: skip
    assert reader.send_task("cli.add", args=(2, 3)).get(timeout=60) == 5

    restarted = conveyor(db, "multi", "restart", *nodes)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert f"> Restarting node w2@{host}: OK" in restarted.stdout
    new = {name: read_pid(tmp_path / f"{name}.pid") for name in ("w1", "w2")}
    assert None not in new.values() and not set(new.values()) & set(pids.values())
    assert all(_gone(pid) for pid in pids.values() if pid is not None)

    stopped = conveyor(db, "multi", "stopwait", *nodes)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"\t> w1@{host}: TERM -> {new['w1']}" in stopped.stdout
    assert f"\t> w2@{host}: OK" in stopped.stdout
    assert not list(tmp_path.glob("*.pid"))
    again = conveyor(db, "multi", "stop", *nodes)
    assert f"> w1@{host}: DOWN" in again.stdout and again.returncode == 0


def test_multi_reports_a_node_that_fails_to_start(db: Where, tmp_path: Path) -> None:
    started = conveyor(
        db, "multi", "start", "bad", "-A", "no_such_module", f"--pidfile={tmp_path}/%n.pid",
        f"--logfile={tmp_path}/%n.log",
    )  # fmt: skip
    assert started.returncode == 1
    assert f"> bad@{socket.gethostname()}: FAILED" in started.stdout
    assert "no_such_module" in started.stderr  # the app failed to load, before detaching
    assert not (tmp_path / "bad.pid").exists()

    quiet = conveyor(
        db, "multi", "start", "bad", "-A", "no_such_module", "--quiet", "--verbose",
        f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n.log",
    )  # fmt: skip
    assert (quiet.returncode, quiet.stdout) == (1, "")  # --quiet wins over --verbose
    assert "no_such_module" in quiet.stderr
    plain = conveyor(
        db, "multi", "start", "bad", "-A", "no_such_module", "--nosplash", "--verbose",
        f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n.log",
    )  # fmt: skip
    assert plain.stdout.startswith("> Starting nodes...\n  ")  # no version line; the command
    assert "-m conveyor -A no_such_module worker --detach" in plain.stdout


def test_a_detached_scheduler_writes_its_pid_file_and_stops_on_sigterm(
    db: Where, tmp_path: Path
) -> None:
    pidfile, logfile = tmp_path / "beat.pid", tmp_path / "beat.log"
    started = conveyor(
        db, "-A", "cli_app", "beat", "--detach", "-l", "INFO",
        f"--pidfile={pidfile}", f"--logfile={logfile}",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = read_pid(pidfile)
    assert pid is not None and f"conveyor beat detached: pid {pid}" in started.stderr
    wait_until(lambda: "conveyor beat" in logfile.read_text(), 60, "the scheduler's banner")
    os.kill(pid, 15)
    wait_until(lambda: _gone(pid), 60, "the detached scheduler to stop")
    assert not pidfile.exists()


def test_multi_kill_leaves_a_stale_pid_file_that_the_next_start_replaces(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    files = (f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n.log")
    node = ("k1", "-A", "cli_app", "-P", "threads", *files)
    assert conveyor(db, "multi", "start", *node).returncode == 0
    pid = read_pid(tmp_path / "k1.pid")
    assert pid is not None
    killed = conveyor(db, "multi", "kill", *node)
    assert killed.returncode == 0 and f"KILL -> {pid}" in killed.stdout
    wait_until(lambda: _gone(pid), 30, "the killed worker to die")
    assert (tmp_path / "k1.pid").read_text() == f"{pid}\n"  # left behind, as Celery's
    assert f"k1@{socket.gethostname()}: DOWN" in conveyor(db, "multi", "stop", *node).stdout
    again = conveyor(db, "multi", "start", *node)
    assert again.returncode == 0, again.stdout + again.stderr
    assert reader.send_task("cli.add", args=(1, 2)).get(timeout=60) == 3
    assert conveyor(db, "multi", "stopwait", *node).returncode == 0
