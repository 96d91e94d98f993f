"""One SQLite database file shared by the SQLite broker and result store.

Connections are per thread (sqlite3 connections must not cross threads), in autocommit mode
with explicit `BEGIN IMMEDIATE` for writes so that concurrent writers queue on SQLite's lock
instead of failing half-way. WAL lets readers run beside the writer.

Waiting without busy polling of tables: `PRAGMA data_version` changes whenever *another*
connection commits, and reading it costs microseconds, so `wait_for_change` notices a commit
from any process within about a millisecond while touching no table.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .errors import ConfigurationError

_SYNC_MODES = {"off", "normal", "full", "extra"}
_POLL_MIN = 0.0005
_POLL_MAX = 0.005


def sqlite_path_from_url(url: str) -> tuple[Path, str]:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, optional `?synchronous=full`.

    Returns (path, synchronous mode).
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigurationError(f"not a sqlite URL: {url!r}")
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not raw:
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    sync = parse_qs(parts.query).get("synchronous", ["normal"])[0].lower()
    if sync not in _SYNC_MODES:
        raise ConfigurationError(
            f"synchronous={sync!r} in {url!r}: use one of {sorted(_SYNC_MODES)}"
        )
    return Path(raw), sync


def _switch_to_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Turn on WAL. Switching a new file's journal mode needs an exclusive lock and does not
    wait on the busy handler, so when several processes open a fresh database at once some
    see "database is locked": retry until the first one has switched it."""
    deadline = time.monotonic() + patience
    pause = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


class SqliteDatabase:
    """Thread-local connections to one database file, with schema set-up on first use."""

    def __init__(self, path: Path, synchronous: str = "normal", schema: str = "") -> None:
        self.path = path
        self._synchronous = synchronous
        self._schema = schema
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # Fail now, naming the path, if the file cannot be created or written.
        try:
            self.connection().executescript(schema or "SELECT 1")
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigurationError(f"SQLite database {self.path} was closed")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA busy_timeout=30000")
            _switch_to_wal(conn)
            conn.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        except (OSError, sqlite3.Error) as exc:
            raise self._unusable(exc) from exc
        return conn

    def _unusable(self, exc: Exception) -> ConfigurationError:
        return ConfigurationError(
            f"cannot use the SQLite database at {self.path.resolve()}: {exc}. Make sure the "
            "directory exists and is writable, or point CONVEYOR_BROKER_URL / "
            "CONVEYOR_RESULT_BACKEND at another path (sqlite:///path/to/file.db)"
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taking SQLite's write lock up front (BEGIN IMMEDIATE)."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise ConfigurationError(
                f"cannot write to the SQLite database at {self.path.resolve()}: {exc}"
            ) from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def data_version(self) -> int:
        row = self.connection().execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block until another connection commits or `timeout` passes; return the version."""
        deadline = time.monotonic() + timeout
        pause = _POLL_MIN
        while True:
            version = self.data_version()
            remaining = deadline - time.monotonic()
            if version != since or remaining <= 0:
                return version
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _POLL_MAX)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
