"""Celery's daemonization commands as its docs write them (`celery` → `conveyor`), run for
real: `multi start|restart|stop|stopwait w1 -A proj -l INFO` with `%n` pid and log files, and
`worker --detach --pidfile --logfile`."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from conveyor.cli.files import read_pid

from .harness import command, produce, project, wait_until

PROJ = "cli_next_steps"


def _files(tmp_path: Path) -> tuple[str, str]:
    return f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n%I.log"


def _add(where: Path, url: str) -> str:
    return produce(where, url, "from proj.tasks import add; print(add.delay(2, 2).get(60))").strip()


def test_multi_start_restart_stopwait(compat_url: str, tmp_path: Path) -> None:
    where, host = project(PROJ), socket.gethostname()
    node = ("w1", "-A", "proj", "-l", "INFO", *_files(tmp_path))
    started = command(where, compat_url, "multi", "start", *node)
    assert started.returncode == 0 and f"> w1@{host}: OK" in started.stdout, started.stderr
    first = read_pid(tmp_path / "w1.pid")
    assert first is not None and _add(where, compat_url) == "4"

    restarted = command(where, compat_url, "multi", "restart", *node)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    second = read_pid(tmp_path / "w1.pid")
    assert second is not None and second != first and _add(where, compat_url) == "4"

    stopped = command(where, compat_url, "multi", "stopwait", *node)
    assert stopped.returncode == 0 and f"> w1@{host}: OK" in stopped.stdout
    assert read_pid(tmp_path / "w1.pid") is None
    assert "Adding 2 + 2" in (tmp_path / "w1.log").read_text()


def test_multi_stop_signals_without_waiting(compat_url: str, tmp_path: Path) -> None:
    where = project(PROJ)
    node = ("w1", "-A", "proj", "-l", "INFO", *_files(tmp_path))
    assert command(where, compat_url, "multi", "start", *node).returncode == 0
    pid = read_pid(tmp_path / "w1.pid")
    stopped = command(where, compat_url, "multi", "stop", *node)
    assert stopped.returncode == 0 and f"TERM -> {pid}" in stopped.stdout
    wait_until(lambda: read_pid(tmp_path / "w1.pid") is None, 60, "the worker to stop")


def test_worker_detach_with_pid_and_log_files(compat_url: str, tmp_path: Path) -> None:
    where = project(PROJ)
    pidfile, logfile = tmp_path / "worker.pid", tmp_path / "worker.log"
    args = ("-A", "proj", "worker", "--detach", f"--pidfile={pidfile}", f"--logfile={logfile}")
    started = command(where, compat_url, *args, "-l", "INFO")
    assert started.returncode == 0, started.stderr
    pid = read_pid(pidfile)
    assert pid is not None
    try:
        assert _add(where, compat_url) == "4"
        assert "Adding 2 + 2" in logfile.read_text()
    finally:
        os.kill(pid, 15)
    wait_until(lambda: read_pid(pidfile) is None, 60, "the detached worker to stop")


def test_the_systemd_unit_commands_of_celerys_daemonization_guide(
    compat_url: str, tmp_path: Path
) -> None:
    # ExecStart / ExecStop as the guide writes them, with its /etc/conf.d/celery values
    # (CELERYD_NODES="w1 w2", CELERYD_OPTS="--time-limit=300 --concurrency=8"), paths in tmp.
    where = project(PROJ)
    files = (f"--pidfile={tmp_path}/%n.pid", f"--logfile={tmp_path}/%n%I.log")
    start = ("-A", "proj", "multi", "start", "w1", "w2", *files, "--loglevel=INFO")
    started = command(where, compat_url, *start, "--time-limit=300", "--concurrency=8")
    assert started.returncode == 0, started.stdout + started.stderr
    assert all(read_pid(tmp_path / f"{n}.pid") for n in ("w1", "w2"))
    assert _add(where, compat_url) == "4"
    stop = ("multi", "stopwait", "w1", "w2", *files, "--loglevel=INFO")  # no -A, as in ExecStop
    stopped = command(where, compat_url, *stop)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not list(tmp_path.glob("*.pid"))
