"""The pid file (exclusive, private, never through a symlink, live owners refused, stale files
replaced, removed only while ours), the root warning, and file options in missing directories."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from conveyor.cli.files import Pidfile, PidfileError, in_existing_directory
from conveyor.cli.worker import warn_if_root
from conveyor.errors import ConfigurationError
from conveyor.worker.health import HealthReporter, current


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_pidfile_is_private_whatever_the_umask_and_removed_on_release(
    tmp_path: Path, no_umask: None
) -> None:
    path = tmp_path / "w.pid"
    lock = Pidfile.acquire(path)
    assert path.read_text() == f"{os.getpid()}\n"
    assert path.stat().st_mode & 0o777 == 0o600
    lock.release()
    assert not path.exists()


def test_a_live_owner_is_refused_and_its_file_left_alone(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "w.pid"
    path.write_text(f"{live_pid}\n")
    with pytest.raises(PidfileError, match=f"names process {live_pid}, which is running"):
        Pidfile.acquire(path)
    assert path.read_text() == f"{live_pid}\n"


@pytest.mark.parametrize(
    "content",
    ["dead", "garbage\n", "", "-1\n", "0\n", "99999999999\n", "ours"],
)
def test_a_stale_pidfile_is_replaced(tmp_path: Path, content: str) -> None:
    path = tmp_path / "w.pid"
    given = {"dead": f"{dead_pid()}\n", "ours": f"{os.getpid()}\n"}.get(content, content)
    path.write_text(given)  # "ours": a restarted container gets the same pid again
    lock = Pidfile.acquire(path)
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    target.chmod(0o644)
    link = tmp_path / "w.pid"
    link.symlink_to(target)
    with pytest.raises(PidfileError, match="symbolic link"):
        Pidfile.acquire(link)
    assert target.read_text() == "keep me\n" and target.stat().st_mode & 0o777 == 0o644
    assert link.is_symlink()
    dangling = tmp_path / "d.pid"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(PidfileError, match="symbolic link"):
        Pidfile.acquire(dangling)
    assert not (tmp_path / "nowhere").exists()


def test_a_fifo_or_directory_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "w.pid"
    os.mkfifo(fifo)
    with pytest.raises(PidfileError, match="not a regular file"):
        Pidfile.acquire(fifo)
    with pytest.raises(PidfileError):
        Pidfile.acquire(tmp_path)


def test_release_leaves_a_file_that_is_no_longer_ours(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "w.pid"
    lock = Pidfile.acquire(path)
    path.unlink()
    path.write_text(f"{live_pid}\n")  # another instance took over after ours was removed
    lock.release()
    assert path.read_text() == f"{live_pid}\n"
    again = Pidfile.acquire(tmp_path / "x.pid")
    (tmp_path / "x.pid").write_text(f"{live_pid}\n")  # same file, someone else's pid now
    again.release()
    assert (tmp_path / "x.pid").exists()


def test_running_as_root_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    warn_if_root.cache_clear()
    with caplog.at_level(logging.WARNING, logger="conveyor.worker"):
        warn_if_root()
        warn_if_root()
    warned = [r for r in caplog.records if "runs as root" in r.getMessage()]
    assert len(warned) == (1 if os.geteuid() == 0 else 0)


def test_a_file_option_in_a_missing_directory_is_a_click_error(tmp_path: Path) -> None:
    param = click.Option(["--pidfile"])
    ctx = click.Context(click.Command("worker"))
    assert in_existing_directory(ctx, param, tmp_path / "w.pid") == tmp_path / "w.pid"
    assert in_existing_directory(ctx, param, None) is None
    with pytest.raises(click.BadParameter, match="does not exist: create it first"):
        in_existing_directory(ctx, param, tmp_path / "missing" / "w.pid")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")
def test_a_health_file_that_cannot_be_written_is_a_configuration_error() -> None:
    """Worker(health_file=...) used without the command line: the first report fails with
    an error naming the file, not a FileNotFoundError from mkstemp."""
    reporter = HealthReporter(Path("/proc/w.health"), lambda: current("w@h", [], stopping=False))
    with pytest.raises(ConfigurationError, match=r"cannot write the health file /proc/w\.health"):
        reporter.start()
