"""Throwaway Redis and PostgreSQL servers of a test's own, on free ports, that the test may kill
and start again without touching the shared test servers. Redis keeps every write on disk
(`appendonly yes`, `appendfsync always`); PostgreSQL runs with fsync on and is stopped in
`immediate` mode (a crash, recovered from the WAL on restart)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SECRET = "s3cret-Pa55word"  # in every URL, so tests can check it never shows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise AssertionError(f"port {port} did not go {'up' if up else 'down'} in {timeout}s")


class RedisServer:
    """`persist=False` runs it as the shared test server runs: `appendonly no`, `save ""`."""

    def __init__(self, directory: Path, persist: bool = True) -> None:
        self.dir = directory
        self.persist = persist
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://:{SECRET}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes" if self.persist else "no",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, up=True)
        self._wait_loaded()

    def _wait_loaded(self) -> None:
        import redis

        client = redis.Redis(port=self.port, password=SECRET)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.BusyLoadingError:
                assert time.monotonic() < deadline, "redis did not finish loading"
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        _wait_port(self.port, up=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    assert found, f"PostgreSQL's {name} is not installed"
    return found[-1]


class PostgresServer:
    """A cluster of its own (initdb into the test's directory), run as the `postgres` user
    when the test runs as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        # its own directory under /tmp: pytest's directories are private to root, and the
        # server may run as `postgres`
        self.dir = Path(tempfile.mkdtemp(prefix="conveyor-pg-")) / "pgdata"
        self.port = free_port()
        # trust authentication ignores the password; it is there to show it never leaks
        self.url = f"postgresql://postgres:{SECRET}@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        done = subprocess.run(
            [*prefix, *args], check=False, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        else:
            os.chmod(self.dir, 0o700)
        self._run(_pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=on"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.dir),
            "-o",
            options,
            "-w",
            "-l",
            str(self.dir / "log.txt"),
            "start",
        )

    def kill(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop")
        _wait_port(self.port, up=False)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self._run(_pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir.parent, ignore_errors=True)
