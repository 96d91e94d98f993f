"""Starting real worker and producer processes, and waiting on conditions with deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Remote:
    """A server-backed place for a test's processes to meet: one URL for the broker and the
    result store (a Redis key prefix or a PostgreSQL schema of the test's own), and the test's
    directory for logs. A `Path` means an SQLite file instead."""

    url: str
    dir: Path


Where = Path | Remote


def url_of(db: Where) -> str:
    return db.url if isinstance(db, Remote) else f"sqlite:///{db}"


def dir_of(db: Where) -> Path:
    return db.dir if isinstance(db, Remote) else db.parent


def env_for(db: Where, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CONVEYOR_BROKER_URL"] = url_of(db)
    env.pop("CONVEYOR_RESULT_BACKEND", None)
    env.pop("CELERY_RESULT_BACKEND", None)  # read when conveyor's is unset
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def conveyor(db: Where, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
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


def python(db: Where, code: str, **extra: str) -> subprocess.CompletedProcess[str]:
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
    db: Where, *args: str, app: str = "sample_app", **extra: str
) -> subprocess.Popen[str]:
    """Start a `conveyor -A <app> worker` process logging to its own file beside `db`."""
    path = dir_of(db) / f"worker-{time.monotonic_ns()}.log"
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
def worker(db: Where, *args: str, **extra: str) -> Iterator[subprocess.Popen[str]]:
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


def read_logs(db: Where) -> str:
    return "\n".join(p.read_text() for p in sorted(dir_of(db).glob("worker-*.log")))


def pause(proc: subprocess.Popen[str], db: Where) -> None:
    """SIGSTOP `proc` at a moment it holds no SQLite write lock. A process stopped inside a
    write transaction (a lease renewal, say) holds the file's lock until it is continued, which
    stops every other writer: SQLite's nature, not what a pause test means to show. With a
    server, any moment will do."""
    for _ in range(100):
        proc.send_signal(signal.SIGSTOP)
        if isinstance(db, Remote) or not _write_locked(db):
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"could not stop pid {proc.pid} outside a write to {db}")


def _write_locked(path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()
