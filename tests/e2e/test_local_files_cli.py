"""Local files and URLs at the command line, as a user meets them: a real worker's pid and health
files (0600 under a umask of 0), a second worker refused by the first one's pid file, a pid
file symlink refused, the root warning, and clear errors — never tracebacks — for file options
in missing directories and for bad Redis and PostgreSQL URLs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .. import services
from ..integration.helpers import HERE as SAMPLE_DIR
from ..integration.helpers import conveyor, env_for, stop_worker, wait_until


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


@contextmanager
def worker_without_umask(db: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A real `conveyor worker` started with a umask of 0, its output in `db`'s directory."""
    log = (db.parent / "worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "sample_app", "worker", "-P", "solo", *args],
        cwd=SAMPLE_DIR,
        env=env_for(db),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        umask=0,
    )
    try:
        yield proc
    finally:
        stop_worker(proc)
        log.close()


def test_pid_and_health_files_are_private_and_a_second_worker_is_refused(db: Path) -> None:
    pidfile, health = db.parent / "w.pid", db.parent / "w.health"
    with worker_without_umask(db, "--pidfile", str(pidfile), "--health-file", str(health)) as w:
        wait_until(lambda: pidfile.exists() and health.exists(), 60, "the pid and health files")
        assert int(pidfile.read_text()) == w.pid
        assert pidfile.stat().st_mode & 0o777 == 0o600
        assert health.stat().st_mode & 0o777 == 0o600
        second = conveyor(db, "-A", "sample_app", "worker", "-P", "solo", "--pidfile", str(pidfile))
        assert second.returncode == 1, second.stderr
        assert f"names process {w.pid}, which is running" in second.stderr
        assert "Traceback" not in second.stderr
        assert int(pidfile.read_text()) == w.pid  # the first worker's file is left alone
    assert not pidfile.exists()  # removed at the clean exit: it was still ours
    log = (db.parent / "worker.log").read_text()
    if os.geteuid() == 0:  # the tests run as root here: a real worker says so
        assert log.count("this worker runs as root") == 1, log


def test_a_stale_pidfile_is_replaced_by_a_real_worker(db: Path) -> None:
    pidfile = db.parent / "w.pid"
    pidfile.write_text("4194304999\n")  # no such process
    with worker_without_umask(db, "--pidfile", str(pidfile)) as w:
        wait_until(lambda: pidfile.read_text() == f"{w.pid}\n", 60, "the worker's pid")


def test_a_pidfile_symlink_is_refused_and_its_target_untouched(db: Path) -> None:
    target = db.parent / "precious.conf"
    target.write_text("keep me\n")
    link = db.parent / "w.pid"
    link.symlink_to(target)
    for command in (["worker", "-P", "solo"], ["beat"]):
        out = conveyor(db, "-A", "sample_app", *command, "--pidfile", str(link))
        assert out.returncode == 1 and "symbolic link" in out.stderr, out.stderr
    assert target.read_text() == "keep me\n" and link.is_symlink()


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "--pidfile", "{missing}/w.pid"],
        ["worker", "--health-file", "{missing}/w.health"],
        ["worker", "--logfile", "{missing}/w.log"],
        ["beat", "--pidfile", "{missing}/b.pid"],
    ],
)
def test_a_file_option_in_a_missing_directory_is_a_clear_error(db: Path, args: list[str]) -> None:
    missing = db.parent / "no-such-dir"
    out = conveyor(db, "-A", "sample_app", *(a.format(missing=missing) for a in args))
    assert out.returncode == 2, out.stderr
    assert f"the directory {missing} does not exist" in out.stderr
    assert "Traceback" not in out.stderr and not missing.exists()


UNWRITABLE = Path("/proc")  # exists, but no file can be created in it, even by root


@pytest.mark.skipif(not UNWRITABLE.is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "--health-file", "/proc/w.health"], "cannot write a file in /proc"),
        (["worker", "--logfile", "/proc/w.log"], "cannot write the log file /proc/w.log"),
        (["beat", "--logfile", "/proc/b.log"], "cannot write the log file /proc/b.log"),
    ],
)
def test_a_file_option_in_a_directory_that_cannot_be_written_is_a_clear_error(
    db: Path, args: list[str], message: str
) -> None:
    out = conveyor(db, "-A", "sample_app", *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:pw1@127.0.0.1:6379/abc", "database 'abc' in redis://:***@127.0.0.1:6379/abc"),
        ("redis://:pw1@127.0.0.1:63799999/0", "port '63799999'"),
        ("redis://:pw1@127.0.0.1:port/0", "port 'port'"),
        ("postgresql://u:pw1@127.0.0.1:5432x/test", "port '5432x'"),
        ("postgresql://127.0.0.1/test?password=pw1&sslmode=on", "sslmode='on'"),
    ],
)
def test_a_bad_server_url_is_a_clear_error(db: Path, url: str, message: str) -> None:
    out = conveyor(db, "-b", url, "queues")
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "pw1" not in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("command", [["queues"], ["worker", "-P", "solo"]])
def test_a_database_the_redis_server_lacks_is_a_clear_error(db: Path, command: list[str]) -> None:
    """Only the server can refuse it (SELECT at the connection's handshake): an error at once,
    never a traceback, never retried as an outage."""
    services.require_redis()
    url = "redis://:pw1@127.0.0.1:6379/99"
    out = conveyor(db, "-A", "sample_app", "-b", url, *command)
    assert out.returncode == 2, out.stderr
    assert "has no database 99" in out.stderr and "CONFIG GET databases" in out.stderr
    assert "pw1" not in out.stderr and "Traceback" not in out.stderr
