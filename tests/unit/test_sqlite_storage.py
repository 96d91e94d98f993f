"""The SQLite file itself: its mode, its durability setting, its directory, and what happens
when a write cannot be stored — SQLite's real "database or disk is full" (reached with
`PRAGMA max_page_count`) and a COMMIT that fails."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor._sqlite import SqliteDatabase, StorageUnavailable, sqlite_locations
from conveyor.errors import BackendUnavailable, ConfigurationError

BIG = "x" * 20_000  # needs overflow pages: every send of it must grow the file


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def make_app(db: Path, **settings: object) -> Conveyor:
    app = Conveyor("t", broker=f"sqlite:///{db}", set_as_current=False)
    app.conf.update(settings)

    @app.task(name="t.echo")
    def echo(value: str) -> str:
        return value

    return app


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_of(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm")]


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_new_database_files_are_owner_only_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    db = tmp_path / "q.db"
    with umask(mask):
        app = make_app(db)
        app.send_task("t.echo", ("secret",))  # writes the WAL
        try:
            assert {f.name: oct(mode_of(f)) for f in files_of(db)} == {
                f.name: "0o600" for f in files_of(db)
            }
        finally:
            app.close()


def test_database_file_mode_setting_gives_the_mode(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with umask(0o077):  # the setting wins over a stricter umask too
        app = make_app(db, database_file_mode=0o640)
        app.send_task("t.echo", ("shared with the group",))
        try:
            assert [oct(mode_of(f)) for f in files_of(db)] == ["0o640"] * 3
        finally:
            app.close()


def test_an_existing_file_keeps_its_mode_and_a_shared_one_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file made 0644 by an older release stays so (conveyor never chmods a file it did not
    create), but a warning at open says how to make it private — once per process."""
    db = tmp_path / "q.db"
    db.touch()
    db.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="conveyor.sqlite"):
        app = make_app(db)
        app.send_task("t.echo", ("x",))
        app.close()
        make_app(db).close()  # opened again: not warned again
    assert mode_of(db) == 0o644
    warnings = [r.getMessage() for r in caplog.records if r.name == "conveyor.sqlite"]
    assert len(warnings) == 1 and f"chmod 600 {db}" in warnings[0] and "0o644" in warnings[0]


def test_a_private_or_deliberately_shared_file_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared.db"
    shared.touch()
    shared.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="conveyor.sqlite"):
        make_app(tmp_path / "new.db").close()  # created 0600
        make_app(shared, database_file_mode=0o640).close()  # the setting says it is meant
    assert [r for r in caplog.records if r.name == "conveyor.sqlite"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("synchronus=normal", "unknown option 'synchronus'"),
        ("synchronus=normal", "did you mean 'synchronous'"),
        ("file_mode=0644", "the file's mode is the database_file_mode setting"),
        ("synchronous=full&synchronous=normal", "gives synchronous twice"),
        ("synchronous=", "synchronous=''"),
        ("timeout=5", "takes only synchronous"),
    ],
)
def test_unknown_and_repeated_url_options_are_refused(
    tmp_path: Path, query: str, message: str
) -> None:
    app = Conveyor("t", broker=f"sqlite:///{tmp_path}/q.db?{query}", set_as_current=False)
    with pytest.raises(ConfigurationError) as raised:
        app.broker  # noqa: B018
    assert message in str(raised.value)
    assert not (tmp_path / "q.db").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0o400, "include 0o600"),
        (0o1777, "permission mode"),
        ("0600", "permission mode"),
        (True, "permission mode"),
    ],
)
def test_database_file_mode_is_checked(value: object, message: str) -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match=message):
        app.conf.database_file_mode = value


def test_synchronous_defaults_to_full_and_the_url_can_say_normal(tmp_path: Path) -> None:
    full = make_app(tmp_path / "full.db")
    normal = Conveyor("t", broker=f"sqlite:///{tmp_path}/n.db?synchronous=normal")
    try:
        for app, expected in ((full, 2), (normal, 1)):  # SQLite's codes: 1 NORMAL, 2 FULL
            conn = app.broker._db.connection()  # type: ignore[attr-defined]
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    finally:
        full.close()
        normal.close()


def test_a_missing_directory_is_an_error_naming_it_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    app = make_app(missing / "q.db")
    with pytest.raises(ConfigurationError) as raised:
        app.send_task("t.echo", ("x",))
    assert f"the directory {missing} of the SQLite database q.db does not exist" in str(
        raised.value
    )
    assert f"mkdir -p {missing}" in str(raised.value)
    assert not (tmp_path / "no").exists()


def test_worker_start_names_the_absolute_path_of_a_relative_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    same = sqlite_locations("sqlite:///conveyor.db", "sqlite:///conveyor.db")
    assert same == [
        f"broker and result store: SQLite file {tmp_path / 'conveyor.db'} (a relative path: it "
        "depends on the working directory)"
    ]
    apart = sqlite_locations("sqlite:////srv/q.db", "redis://127.0.0.1:6379/0")
    assert apart == ["broker: SQLite file /srv/q.db"]


# -- a full disk: SQLite's real SQLITE_FULL -------------------------------------------------
def cap_growth(conn: sqlite3.Connection) -> None:
    """Let this connection's writes use only the pages the file has now (max_page_count
    cannot go below them): a write needing a new page fails with SQLITE_FULL."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def uncap(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA max_page_count = 4294967294")


def test_a_producer_gets_backend_unavailable_with_the_cause_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path / "q.db", broker_retry_budget=0.3)
    try:
        first = app.send_task("t.echo", (BIG,))
        conn = app.broker._db.connection()  # type: ignore[attr-defined]  # this thread's
        cap_growth(conn)
        with pytest.raises(BackendUnavailable) as raised:
            app.send_task("t.echo", (BIG,), task_id="refused")
        message = str(raised.value)
        assert "database or disk is full" in message and str(tmp_path / "q.db") in message
        assert not conn.in_transaction  # rolled back, not left open
        uncap(conn)
        later = app.send_task("t.echo", (BIG,))
        ids = {m.envelope.id for m in app.broker.list_messages("celery")}
        assert ids == {first.id, later.id}  # the refused call was not stored
    finally:
        app.close()


def test_a_patient_guard_waits_out_a_full_disk_and_then_stores(tmp_path: Path) -> None:
    """A worker's guards are patient while it runs: a write on a full disk waits, and goes
    through once there is room, instead of failing."""
    app = make_app(tmp_path / "q.db")
    broker = app.broker
    guard = broker.guard  # type: ignore[attr-defined]
    stop = threading.Event()
    capped: list[sqlite3.Connection] = []

    def send() -> None:
        conn = broker._db.connection()  # type: ignore[attr-defined]  # the sender's own
        cap_growth(conn)
        capped.append(conn)
        with guard.patient(stop):
            app.send_task("t.echo", (BIG,), task_id="waited")

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_for(lambda: guard.down is not None, "the guard to see the full disk")
        assert "database or disk is full" in guard.down[1]
        assert sender.is_alive()  # waiting, not failed
        assert broker.list_messages("celery") == []
        uncap(capped[0])  # room again (sqlite3 connections here may be used across threads)
        sender.join(30)
        assert not sender.is_alive() and guard.down is None
        assert [m.envelope.id for m in broker.list_messages("celery")] == ["waited"]
    finally:
        stop.set()
        sender.join(5)
        app.close()


# -- the write lock held elsewhere: SQLITE_BUSY ----------------------------------------------
def test_a_lock_held_elsewhere_is_an_outage_for_producers_and_workers(tmp_path: Path) -> None:
    """Another connection (an open sqlite3 shell, a backup, a stuck process) holds the write
    lock past the busy timeout: a producer gets BackendUnavailable after its budget, with the
    cause; a worker's patient guard waits, reports the store down, and stores once released —
    never a ConfigurationError, which would fail or dead-letter calls."""
    db = tmp_path / "q.db"
    app = make_app(db, broker_retry_budget=0.5)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    stop = threading.Event()
    try:
        app.send_task("t.echo", ("before",), task_id="before")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackendUnavailable) as raised:
            app.send_task("t.echo", ("refused",), task_id="refused")
        assert "another connection held the write lock" in str(raised.value)
        assert "database is locked" in str(raised.value)
        broker = app.broker
        guard = broker.guard  # type: ignore[attr-defined]

        def send() -> None:
            with guard.patient(stop):
                app.send_task("t.echo", ("waited",), task_id="waited")

        sender = threading.Thread(target=send)
        sender.start()
        wait_for(lambda: guard.down is not None, "the guard to see the lock")
        assert "database is locked" in guard.down[1] and sender.is_alive()
        holder.execute("ROLLBACK")
        sender.join(30)
        assert not sender.is_alive() and guard.down is None
        ids = sorted(m.envelope.id for m in broker.list_messages("celery"))
        assert ids == ["before", "waited"]
    finally:
        stop.set()
        holder.close()
        app.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# -- a COMMIT that fails --------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS child (
    id INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED
);
"""


def test_a_failed_commit_is_rolled_back_and_the_connection_left_outside_a_transaction(
    tmp_path: Path,
) -> None:
    """A deferred foreign key fails at COMMIT, and SQLite then keeps the transaction open:
    the real case of a COMMIT error. The transaction must end rolled back."""
    db = SqliteDatabase(tmp_path / "c.db", schema=SCHEMA)
    conn = db.connection()
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), db.transaction() as c:
        c.execute("INSERT INTO child VALUES (1, 999)")  # no parent 999: checked at COMMIT
    assert not db.connection().in_transaction
    with db.transaction() as c:  # the next transaction begins normally
        c.execute("INSERT INTO parent VALUES (1)")
        c.execute("INSERT INTO child VALUES (2, 1)")
    rows = db.connection().execute("SELECT id FROM child").fetchall()
    assert rows == [(2,)]  # the failed one was not stored
    db.close()


def test_a_full_disk_inside_a_transaction_is_rolled_back_as_storage_unavailable(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(tmp_path / "f.db", schema="CREATE TABLE IF NOT EXISTS t (v TEXT);")
    conn = db.connection()
    cap_growth(conn)
    with pytest.raises(StorageUnavailable, match="full"), db.transaction() as c:
        c.execute("INSERT INTO t VALUES (?)", (BIG,))
    assert not db.connection().in_transaction
    uncap(conn)
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('fits')")
    assert db.connection().execute("SELECT v FROM t").fetchall() == [("fits",)]
    db.close()
