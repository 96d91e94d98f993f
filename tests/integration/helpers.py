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


def start_worker(
    db: Path, *args: str, app: str = "sample_app", **extra: str
) -> subprocess.Popen[str]:
    """Start a `conveyor -A <app> worker` process logging to its own file beside `db`."""
    path = db.parent / f"worker-{time.monotonic_ns()}.log"
    with path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-A", app, "worker", "-l", "info", *args],
            cwd=HERE,
            env=env_for(db, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    proc.log_path = path  # type: ignore[attr-defined]
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    """Warm-stop a worker (SIGTERM), killing it if it does not stop within 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_of(proc: subprocess.Popen[str]) -> str:
    return Path(proc.log_path).read_text()  # type: ignore[attr-defined]


def pool_children(pid: int) -> list[int]:
    """Pool children of a worker main (the fork server's children are the pool)."""
    found = []
    for kid in _children(pid):
        found += _children(kid) if b"forkserver" in _cmdline(kid) else []
    return found


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@contextlib.contextmanager
def worker(db: Path, *args: str, **extra: str) -> Iterator[subprocess.Popen[str]]:
    """A `conveyor -A sample_app worker` process, stopped (and reaped) on exit."""
    proc = start_worker(db, *args, **extra)
    try:
        yield proc
    finally:
        stop_worker(proc)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` until it is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def read_logs(db: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(db.parent.glob("worker-*.log")))
