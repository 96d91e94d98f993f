"""Running a Celery-shaped project for real: a worker process and producer scripts, started in
the project's own directory with the broker URL in `COMPAT_BROKER_URL` (the project reads it from
the environment, as real projects read theirs)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).parent
PROJECTS = HERE / "projects"


def project(name: str) -> Path:
    """The directory of the project `name` under tests/compat/projects/."""
    path = PROJECTS / name
    if not path.is_dir():
        raise FileNotFoundError(f"no compat project {name!r} in {PROJECTS}")
    return path


def env_for(url: str, **extra: str) -> dict[str, str]:
    """The environment of the project's processes: its broker (and result) URL, nothing else
    inherited that would point it elsewhere."""
    env = dict(os.environ)
    env["COMPAT_BROKER_URL"] = url
    env["CONVEYOR_BROKER_URL"] = url
    env.pop("CONVEYOR_RESULT_BACKEND", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def produce(where: Path, url: str, code: str, timeout: float = 120, **extra: str) -> str:
    """Run `python -c code` in the project directory; return its stdout. A non-zero exit
    raises AssertionError with the process's stderr."""
    done = subprocess.run(  # noqa: PLW1510 - the exit code is checked below
        [sys.executable, "-c", code],
        cwd=where,
        env=env_for(url, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"producer exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n"
            f"{done.stderr}"
        )
    return done.stdout


def command(where: Path, url: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run one `conveyor ...` command (as `python -m conveyor`) to completion."""
    return subprocess.run(  # noqa: PLW1510 - callers assert the exit code
        [sys.executable, "-m", "conveyor", *args],
        cwd=where,
        env=env_for(url, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


class Worker:
    """A running `python -m conveyor ...` process whose output goes to a log file."""

    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.proc = proc
        self.log_path = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Wait until `text` appears in the log; fail with the log if it does not."""
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in the worker log", self)

    def stop(self) -> None:
        """Warm stop (SIGTERM); killed if still running after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.contextmanager
def worker(where: Path, url: str, *args: str, **extra: str) -> Iterator[Worker]:
    """`python -m conveyor <args>` (e.g. "-A", "proj", "worker", "-l", "INFO") started in the
    project directory, stopped and reaped on exit."""
    log = (
        Path(os.environ.get("TMPDIR", "/tmp"))
        / f"compat-worker-{os.getpid()}-{time.monotonic_ns()}.log"
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", *args],
            cwd=where,
            env=env_for(url, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    running = Worker(proc, log)
    try:
        yield running
    finally:
        running.stop()
        log.unlink(missing_ok=True)


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, proc: Worker | None = None
) -> None:
    """Poll `predicate` until it is truthy; fail naming `what` (and the worker's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tail = f"\n--- worker log\n{proc.log()}" if proc is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{tail}")
