"""A full disk under the SQLite backend: producers get BackendUnavailable with the cause and
store nothing; a running worker waits, survives, and resumes by itself when space returns,
losing nothing; a COMMIT that fails is rolled back.

Two real ways to fill the disk: SQLite's own limit (`PRAGMA max_page_count`, which raises the
real SQLITE_FULL) for a worker running in this process, and a small tmpfs filled to the last
page (the real ENOSPC) for a worker process. Mounting needs root with CAP_SYS_ADMIN; where the
mount is refused those tests skip, saying so.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor._sqlite import SqliteDatabase, StorageUnavailable
from conveyor.errors import BackendUnavailable
from conveyor.result import AsyncResult
from conveyor.results.base import Outcome
from conveyor.states import TaskState
from conveyor.worker.worker import Worker, default_options

from .helpers import HERE, env_for, wait_until

pytestmark = pytest.mark.slow
WORKER = ("worker", "-P", "solo", "-l", "info")
BIG = "x" * 20_000  # an outcome this size needs new pages: storing it must grow the file


# -- SQLite's own limit, a worker running in this process ----------------------------------
def capped_worker_connections(app: Conveyor) -> list[sqlite3.Connection]:
    """Every connection the worker's threads opened (this thread's own are left alone)."""
    found = []
    for db in (app.broker._db, app.results._db):  # type: ignore[attr-defined]
        mine = getattr(db._local, "conn", None)
        found += [c for c in list(db._all) if c is not mine]
    for conn in found:  # sqlite3 connections here may be used from any thread
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
    return found


def test_a_running_worker_waits_out_sqlite_full_and_loses_nothing(tmp_path: Path) -> None:
    app = Conveyor("full", broker=f"sqlite:///{tmp_path / 'q.db'}", set_as_current=False)

    @app.task(name="full.big")
    def big(i: int) -> str:
        return f"{i}:{BIG}"

    worker = Worker(app, default_options(app, name="w@full", pool="threads", concurrency=2))
    running = threading.Thread(target=worker.run, name="worker-under-test")
    running.start()
    try:
        assert big.delay(-1).get(timeout=30).startswith("-1:")  # its threads are connected
        capped = capped_worker_connections(app)
        assert capped, "the worker opened no connection of its own"
        calls = [big.delay(i) for i in range(5)]  # this thread's connection is not capped
        guard = app.results.guard  # type: ignore[attr-defined]
        wait_until(lambda: guard.down is not None, 30, "the worker to meet the full file")
        assert "database or disk is full" in guard.down[1]
        assert running.is_alive() and not worker.health().consuming
        for conn in capped:
            conn.execute("PRAGMA max_page_count = 4294967294")  # room again
        for i, call in enumerate(calls):
            assert call.get(timeout=60) == f"{i}:{BIG}"
        assert guard.down is None and worker.health().consuming
    finally:
        worker.stop()
        running.join(60)
        app.close()
    assert not running.is_alive() and worker._failure is None


# -- a real small filesystem, filled to the last page ---------------------------------------
@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 8 MiB tmpfs of the test's own, unmounted afterwards."""
    where = tmp_path / "small"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("cannot fill a real filesystem: no mount command on this machine")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "conveyor-test", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            "cannot fill a real filesystem: mounting a tmpfs needs root with CAP_SYS_ADMIN "
            f"(in the initial user namespace), which this process lacks: {done.stderr.strip()}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Write a file until the filesystem has no page left (ENOSPC)."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def producer(db: Path) -> Conveyor:
    app = Conveyor("producer", broker=f"sqlite:///{db}", set_as_current=False)
    app.conf.broker_retry_budget = 0.5

    @app.task(name="sample.sleep")
    def sleep(seconds: float) -> str:
        raise AssertionError("runs in the worker process")

    return app


def test_a_producer_on_a_full_filesystem_gets_backend_unavailable(small_fs: Path) -> None:
    app = producer(small_fs / "q.db")
    try:
        first = app.send_task("sample.sleep", (0,))
        filler = fill(small_fs)
        with pytest.raises(BackendUnavailable, match="database or disk is full"):
            app.send_task("sample.sleep", (0,), task_id="refused")
        filler.unlink()
        later = app.send_task("sample.sleep", (0,))
        ids = {m.envelope.id for m in app.broker.list_messages("celery")}
        assert ids == {first.id, later.id}
    finally:
        app.close()


def test_a_commit_that_fails_on_a_full_filesystem_is_rolled_back(small_fs: Path) -> None:
    db = SqliteDatabase(small_fs / "c.db", schema="CREATE TABLE IF NOT EXISTS t (v TEXT);")
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('before')")
    filler = fill(small_fs)
    statement_ran = False
    with (
        pytest.raises(StorageUnavailable, match="database or disk is full"),
        db.transaction() as c,
    ):
        c.execute("INSERT INTO t VALUES (?)", (BIG,))  # kept in memory until COMMIT
        statement_ran = True
    assert statement_ran  # so it was the COMMIT (writing the WAL) that failed
    assert not db.connection().in_transaction
    filler.unlink()
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('after')")
    assert db.connection().execute("SELECT v FROM t").fetchall() == [("before",), ("after",)]
    db.close()


def test_a_worker_process_survives_a_full_filesystem_and_resumes(
    small_fs: Path, tmp_path: Path
) -> None:
    db = small_fs / "q.db"
    app = producer(db)
    log_path = tmp_path / "worker.log"  # not on the filesystem that fills up
    calls = [app.send_task("sample.sleep", (0.2,)) for _ in range(20)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-A", "sample_app", *WORKER],
            cwd=HERE,
            env=env_for(db),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    filler: Path | None = None
    try:

        def state(call: AsyncResult) -> Outcome | None:
            return app.results.get(call.id)

        wait_until(
            lambda: any((o := state(c)) and o.state is TaskState.SUCCESS for c in calls),
            60,
            "the first call to finish",
        )
        filler = fill(small_fs)
        with pytest.raises(BackendUnavailable, match="database or disk is full"):
            app.send_task("sample.sleep", (0,))
        wait_until(
            lambda: "database or disk is full" in log_path.read_text(),
            60,
            "the worker to meet the full disk",
        )
        assert proc.poll() is None, log_path.read_text()
        pending = [c for c in calls if (o := state(c)) is None or o.state is not TaskState.SUCCESS]
        assert pending, "every call finished before the disk filled: nothing was tested"
        filler.unlink()
        filler = None
        after = app.send_task("sample.sleep", (0,))
        for call in [*calls, after]:
            assert call.get(timeout=120) == "slept"
        assert proc.poll() is None and "reachable again" in log_path.read_text()
    finally:
        if filler is not None:
            filler.unlink()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        app.close()
    assert proc.returncode == 0, log_path.read_text()
