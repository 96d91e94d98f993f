"""Starting real worker and producer processes, and waiting on conditions with deadlines."""

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


def env_for(db: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CONVEYOR_BROKER_URL"] = f"sqlite:///{db}"
    env.pop("CONVEYOR_RESULT_BACKEND", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def conveyor(db: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run one `conveyor` command to completion."""
    return subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [sys.executable, "-m", "conveyor", *args],
        cwd=HERE,
        env=env_for(db, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def python(db: Path, code: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh process (a producer)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=HERE,
        env=env_for(db, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@contextlib.contextmanager
def worker(db: Path, *args: str, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """A `conveyor -A sample_app worker` process, stopped (and reaped) on exit."""
    log = (db.parent / f"worker-{time.monotonic_ns()}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "-A", "sample_app", "worker", "-l", "info", *args],
        cwd=HERE,
        env=env_for(db, **extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def read_logs(db: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(db.parent.glob("worker-*.log")))
