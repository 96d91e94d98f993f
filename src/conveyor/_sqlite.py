"""One SQLite database file shared by the SQLite broker and result store.

Connections are per thread (sqlite3 connections must not cross threads), in autocommit mode
with explicit `BEGIN IMMEDIATE` for writes so that concurrent writers queue on SQLite's lock
instead of failing half-way. WAL lets readers run beside the writer.

Durability: `synchronous=full` (the default) makes every commit wait for the WAL to reach the
disk (one fdatasync per commit), so a call that returned is stored even across a power cut;
`normal` syncs only at checkpoints, so a power cut (not a process crash) may lose the last
commits. `bench/sqlite_sync_bench.py` measures what each costs.

Files: a database file conveyor creates gets `file_mode` (0600 by default, whatever the
umask); SQLite gives its -wal and -shm files the database file's mode. A file that exists
keeps its mode; when that mode lets the group or others in while `file_mode` is the default
(a file made by a release that created it 0644), a warning at open says how to fix it. The
directory must exist: a missing one is an error naming it, never created, so a typo in a path
is not a second, empty queue.

Failures: a write that fails because the disk is full (SQLITE_FULL) or the file cannot be
written (SQLITE_IOERR), or that waited `lock_wait` seconds for SQLite's write lock while
another connection held it (SQLITE_BUSY, SQLITE_LOCKED: a long transaction, an open `sqlite3`
shell, a backup), is rolled back and raised as `StorageUnavailable`, which the stores' guards
(`sqlite_guard`) retry like a server outage: producers for `broker_retry_budget` seconds, then
`BackendUnavailable` with the cause; workers until the disk has room or the lock is released.
Any failed COMMIT is rolled back, so the thread's connection never stays inside a transaction.

Waiting without busy polling of tables: `PRAGMA data_version` changes whenever *another*
connection commits, and reading it costs microseconds, so `wait_for_change` notices a commit
from any process within about a millisecond while touching no table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ._names import did_you_mean
from .errors import ConfigurationError
from .guard import Guard

log = logging.getLogger("conveyor.sqlite")
_SYNC_MODES = {"off", "normal", "full", "extra"}
DEFAULT_SYNCHRONOUS = "full"
DEFAULT_FILE_MODE = 0o600
_POLL_MIN = 0.0005
_POLL_MAX = 0.005
DEFAULT_LOCK_WAIT = 5.0  # seconds one write waits for SQLite's lock before it is retried
# SQLite's primary result codes that mean "the storage cannot take this write now".
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_STORAGE_MESSAGES = ("database or disk is full", "disk I/O error")
# ... and "another connection holds the lock".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_LOCK_MESSAGES = ("database is locked", "database table is locked")


class StorageUnavailable(Exception):
    """A write to the SQLite file failed for want of room or a working disk, or because
    another connection held the write lock too long; it was rolled back, so the call may be
    repeated once the storage has recovered."""


def lock_wait(retry_budget: float | None) -> float:
    """How long one write waits for SQLite's lock (its busy timeout): short enough that a
    producer's retry budget is kept, DEFAULT_LOCK_WAIT for a patient worker."""
    if retry_budget is None:
        return DEFAULT_LOCK_WAIT
    return max(0.2, min(DEFAULT_LOCK_WAIT, retry_budget / 2))


def sqlite_path_from_url(url: str) -> tuple[Path, str]:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db`, optional `?synchronous=normal`.

    Returns (path, synchronous mode); the mode defaults to `full`. Any other option, or an
    option given twice, is refused: it would otherwise be silently ignored.
    """
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigurationError(f"not a sqlite URL: {url!r}")
    raw = parts.path[1:] if parts.path.startswith("/") else parts.path
    if parts.netloc or not raw:
        raise ConfigurationError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    options = _options(url, parts.query)
    sync = options.get("synchronous", DEFAULT_SYNCHRONOUS).lower()
    if sync not in _SYNC_MODES:
        raise ConfigurationError(
            f"synchronous={sync!r} in {url!r}: use one of {sorted(_SYNC_MODES)}"
        )
    return Path(raw), sync


_URL_OPTIONS = ("synchronous",)
_SETTING_INSTEAD = {"file_mode": "database_file_mode", "mode": "database_file_mode"}


def _options(url: str, query: str) -> dict[str, str]:
    """The query options of a SQLite URL, each known and given once."""
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _URL_OPTIONS:
            instead = _SETTING_INSTEAD.get(name)
            hint = f"; the file's mode is the {instead} setting" if instead else ""
            raise ConfigurationError(
                f"unknown option {name!r} in the SQLite URL {url!r}"
                f"{did_you_mean(name, _URL_OPTIONS)}: a SQLite URL takes only "
                f"{', '.join(_URL_OPTIONS)}{hint}"
            )
        if name in options:
            raise ConfigurationError(f"{url!r} gives {name} twice: keep one")
        options[name] = value
    return options


def sqlite_locations(broker_url: str, backend_url: str) -> list[str]:
    """Lines naming the absolute path of the SQLite file(s) among the broker and result-store
    URLs, for a worker's start: a relative path (the default `./conveyor.db` among them)
    depends on the working directory, and a worker started elsewhere than its producers
    would consume an empty queue of its own."""
    roles: dict[Path, list[str]] = {}
    relative: set[Path] = set()
    for role, url in (("broker", broker_url), ("result store", backend_url)):
        if urlsplit(url).scheme != "sqlite":
            continue
        path, _ = sqlite_path_from_url(url)
        roles.setdefault(path.resolve(), []).append(role)
        if not path.is_absolute():
            relative.add(path.resolve())
    return [
        f"{' and '.join(names)}: SQLite file {path}"
        + (" (a relative path: it depends on the working directory)" if path in relative else "")
        for path, names in roles.items()
    ]


def check_file_mode(value: object) -> int:
    """A permission mode for new database files: an int such as 0o600 that lets the owner
    read and write (SQLite needs both); raise ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ConfigurationError(
            f"database_file_mode must be a permission mode such as 0o600, got {value!r}"
        )
    if value & 0o600 != 0o600:
        raise ConfigurationError(
            f"database_file_mode {value:#o} does not let the owner read and write the file, "
            "which SQLite needs: include 0o600"
        )
    return value


def sqlite_guard(what: str, path: Path, budget: float | None) -> Guard:
    """The guard of one SQLite-backed store: retries calls that failed with
    StorageUnavailable (see the module docstring)."""
    return Guard(f"{what} at {path.resolve()}", str(path), (StorageUnavailable,), budget)


def storage_failure(exc: sqlite3.Error) -> bool:
    """True when `exc` says the disk is full or failing (worth waiting for), not that the
    statement or the file is wrong."""
    return _has_code(exc, (_SQLITE_FULL, _SQLITE_IOERR), _STORAGE_MESSAGES)


def lock_failure(exc: sqlite3.Error) -> bool:
    """True when `exc` says another connection held the lock past the busy timeout."""
    return _has_code(exc, (_SQLITE_BUSY, _SQLITE_LOCKED), _LOCK_MESSAGES)


def _has_code(exc: sqlite3.Error, codes: tuple[int, ...], messages: tuple[str, ...]) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in codes
    return any(m in str(exc) for m in messages)  # Python 3.10 has no error codes


def _create(path: Path, mode: int) -> None:
    """Create the database file with exactly `mode` (umask aside) unless it exists. O_EXCL
    never follows a symlink and lets one of several processes opening at once create it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away
    finally:
        os.close(fd)


_warned_modes: set[Path] = set()  # files whose mode was warned about, once per process


def _warn_if_shared(path: Path) -> None:
    """Warn, once per process and file, that an existing file is readable beyond its owner."""
    where = path.resolve()
    try:
        mode = stat.S_IMODE(where.stat().st_mode)
    except OSError:
        return
    if not mode & 0o077 or where in _warned_modes:
        return
    _warned_modes.add(where)
    log.warning(
        "the SQLite database %s has mode %s: other users can read every queued call and "
        "result, secrets included. Run chmod 600 %s (its -wal and -shm files too), or set "
        "database_file_mode (e.g. 0o640) if the sharing is meant",
        where,
        oct(mode),
        where,
    )


def _check_folder(path: Path) -> None:
    """The database's directory must exist: it is never created (see the module docstring)."""
    folder = path.parent.resolve()
    if folder.is_dir():
        return
    if folder.exists():
        raise ConfigurationError(
            f"cannot use the SQLite database at {path.resolve()}: {folder} is not a directory"
        )
    raise ConfigurationError(
        f"the directory {folder} of the SQLite database {path.name} does not exist: create it "
        f"(mkdir -p {folder}) or point broker_url / result_backend (CONVEYOR_BROKER_URL / "
        "CONVEYOR_RESULT_BACKEND) at a file in an existing directory. It is not created for "
        "you, so that a mistyped path or another working directory does not silently become "
        "a second, empty queue"
    )


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


def _roll_back(conn: sqlite3.Connection) -> None:
    """End the connection's transaction, if SQLite has not already ended it (it rolls back
    by itself after some errors, and ROLLBACK without a transaction is an error)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class SqliteDatabase:
    """Thread-local connections to one database file, with schema set-up on first use."""

    def __init__(
        self,
        path: Path,
        synchronous: str = DEFAULT_SYNCHRONOUS,
        schema: str = "",
        file_mode: int = DEFAULT_FILE_MODE,
        lock_wait: float = DEFAULT_LOCK_WAIT,
    ) -> None:
        self.path = path
        self._lock_wait = lock_wait
        self._synchronous = synchronous
        self._schema = schema
        self._file_mode = check_file_mode(file_mode)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # Fail now, naming the path, if the file cannot be created or written.
        try:
            self.connection().executescript(schema or "SELECT 1")
        except sqlite3.Error as exc:
            raise self._unusable(exc) from exc
        if self._file_mode == DEFAULT_FILE_MODE:
            _warn_if_shared(path)

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
        _check_folder(self.path)
        try:
            _create(self.path, self._file_mode)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._lock_wait
            )
            conn.execute(f"PRAGMA busy_timeout={round(self._lock_wait * 1000)}")
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
        """A write transaction taking SQLite's write lock up front (BEGIN IMMEDIATE). It ends
        committed or rolled back, never open: a failed statement or COMMIT is rolled back and
        re-raised, as StorageUnavailable when the disk is full or failing or the lock was
        held elsewhere for the whole busy timeout."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            unavailable = self._unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc
            raise ConfigurationError(
                f"cannot write to the SQLite database at {self.path.resolve()}: {exc}"
            ) from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            self._end(conn)
            unavailable = self._unavailable(exc) if isinstance(exc, sqlite3.Error) else None
            if unavailable is not None:
                raise unavailable from exc
            raise

    def _end(self, conn: sqlite3.Connection) -> None:
        """Roll back a failed transaction; a connection that cannot even do that is closed and
        replaced, so no later call of this thread runs inside the broken transaction."""
        _roll_back(conn)
        if conn.in_transaction:
            self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _unavailable(self, exc: sqlite3.Error) -> StorageUnavailable | None:
        """The StorageUnavailable that `exc` means, or None when it means something else."""
        where = f"cannot write to the SQLite database at {self.path.resolve()}: {exc}"
        if storage_failure(exc):
            return StorageUnavailable(
                f"{where} (free space on its filesystem, or check the disk; nothing of this "
                "call was stored)"
            )
        if lock_failure(exc):
            return StorageUnavailable(
                f"{where} (another connection held the write lock for over "
                f"{self._lock_wait:g} s: a long transaction, an open sqlite3 shell or a backup "
                "of the file; nothing of this call was stored)"
            )
        return None

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
