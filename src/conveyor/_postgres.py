"""What the PostgreSQL broker and result store share: parsing the URL, a psycopg connection
pool whose connections live in conveyor's schema, and a LISTEN connection that wakes waiters.

URL: `postgresql://[user[:password]@]host[:port]/dbname[?schema=name&…]` (`postgres://` and
Celery's `db+postgresql://` are accepted too). `schema` (default `conveyor`) holds every table,
so several apps — or test runs — can share one database; other query parameters go to libpq
(`sslmode`, `sslrootcert`, `password`…; see docs/security.md).
The schema is created and migrated on first use (see `pgschema.py`) unless the app sets
`database_create_tables_at_setup=False`.

Time: every statement reads the database's clock through `conveyor_now(given)`, which returns
`given` when a clock is injected (tests) and the transaction's timestamp otherwise.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._urls import check_port, check_url, libpq_netloc, safe_url, scrub
from .clock import SYSTEM_CLOCK, Clock
from .errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

DEFAULT_SCHEMA = "conveyor"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
log = logging.getLogger("conveyor.postgres")


def import_psycopg() -> tuple[Any, Any]:
    """psycopg and psycopg_pool, or an error naming the extra to install."""
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(
            "the postgresql:// backend needs psycopg 3 and its pool: "
            'pip install "conveyor[postgres]"'
        ) from None
    return psycopg, psycopg_pool


@dataclass(frozen=True, slots=True)
class PgTarget:
    """A parsed PostgreSQL URL: the libpq conninfo (it holds the password: kept out of the
    repr), the schema, and the URL safe to show."""

    conninfo: str = field(repr=False)
    schema: str
    shown: str

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this schema's broker."""
        return f"conveyor_{self.schema}"

    @property
    def results_channel(self) -> str:
        """The NOTIFY channel of this schema's result store."""
        return f"conveyor_results_{self.schema}"


def parse_url(url: str) -> PgTarget:
    """Split conveyor's own `schema` parameter from what libpq reads, and refuse here what
    libpq would only refuse when connecting (then retried for ever as if the server were
    down): a bad port, an unknown query parameter, an unknown `sslmode`. A password holding
    an unencoded `@` is read as conveyor and redis-py read it (the user-info ends at the last
    `@`), not as libpq would (at the first, sending the password's tail out as a host name)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower().removeprefix("db+").split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(f"not a PostgreSQL URL: {safe_url(url)}")
    check_url(url, "PostgreSQL")
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"schema={schema!r} in {safe_url(url)}: use lower-case letters, digits and '_', "
            "starting with a letter, at most 40 characters"
        )
    # libpq ends the user-info at its first '@': a raw '@' of a password is encoded for it.
    netloc = libpq_netloc(url)
    conninfo = urlunsplit(("postgresql", netloc, parts.path, urlencode(query), ""))
    _check_conninfo(conninfo, url)
    return PgTarget(conninfo, schema, safe_url(url))


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _check_conninfo(conninfo: str, url: str) -> None:
    """What libpq reads from the URL, checked without connecting."""
    psycopg, _ = import_psycopg()
    try:
        options = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"bad PostgreSQL URL {safe_url(url)}: {scrub(str(exc), url)}"
        ) from None
    for port in str(options.get("port") or "").split(","):
        check_port(port, url)
    sslmode = options.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        raise ConfigurationError(
            f"sslmode={sslmode!r} in {safe_url(url)}: use one of {', '.join(_SSLMODES)}"
        )


def transient_errors() -> tuple[type[Exception], ...]:
    """Errors that say the server cannot serve this call *now*, worth retrying (see guard.py):
    `OperationalError` — a lost or refused connection, a server shutting down or starting
    (`AdminShutdown`, `CannotConnectNow`), a transaction rolled back by a serialization
    failure or a deadlock (`TransactionRollback`), a full disk or memory; a pool with no
    connection free in time (`PoolTimeout`); and a server that takes no writes now
    (`ReadOnlySqlTransaction`: a hot standby during a failover, or
    `default_transaction_read_only` set while a disk is being freed).

    Retrying is as safe as the first attempt: such an error rolls back the statement or
    transaction it hit, whole; what an operation of several transactions committed before it
    (the claims of a reservation over several queues) is what guard.py's contract covers (the
    leases run out); and a read-only server refuses every write."""
    pg, pool = import_psycopg()
    return (pg.OperationalError, pool.PoolTimeout, pg.errors.ReadOnlySqlTransaction)


def now_param(clock: Clock) -> float | None:
    """The `now` parameter of every statement: None lets the database's clock decide."""
    return None if clock is SYSTEM_CLOCK else clock.now()


def pool_wait(retry_budget: float | None) -> float:
    """How long one call waits for a pooled connection: short enough that a producer's retry
    budget is kept, long enough for a busy pool."""
    return 5.0 if retry_budget is None else max(0.2, min(5.0, retry_budget / 2))


# What a failed connection says when waiting cannot help: authentication failed (28P01), no
# such role or no pg_hba.conf entry (28000), no such database (3D000). libpq gives no SQLSTATE
# for a failed connection, only the server's text, so it is matched in English (a server with
# other lc_messages is treated as an outage, the reason still shown).
_CONFIG_SQLSTATES = frozenset({"28P01", "28000", "3D000"})
_CONFIG_FAILURE = re.compile(
    r'database ".*" does not exist|role ".*" does not exist|authentication failed for user'
    r"|no pg_hba\.conf entry|pg_hba\.conf rejects|no password supplied"
)


def is_configuration_failure(exc: BaseException) -> bool:
    """True when a connection failed for a reason only the configuration can fix (see above)."""
    return getattr(exc, "sqlstate", None) in _CONFIG_SQLSTATES or bool(
        _CONFIG_FAILURE.search(str(exc))
    )


class Attempts:
    """The outcome of the pool's latest attempt to connect, kept so that a caller who gets no
    connection learns why: psycopg_pool connects on threads of its own and says only
    `PoolTimeout: couldn't get a connection after 5.00 sec`."""

    def __init__(self, target: PgTarget) -> None:
        self._target = target
        self._failure: BaseException | None = None  # one reference: read and set atomically
        self.tried = threading.Event()  # set once the first attempt has ended, either way

    def record(self, failure: BaseException | None) -> None:
        self._failure = failure
        self.tried.set()

    def reason(self) -> str | None:
        """The latest attempt's error, masked; None when it succeeded (or none ended yet)."""
        failure = self._failure
        if failure is None:
            return None
        return scrub(" ".join(str(failure).split()), self._target.conninfo)

    def refusal(self) -> ConfigurationError | None:
        """A ConfigurationError when the latest attempt failed for a configuration reason."""
        failure = self._failure
        if failure is None or not is_configuration_failure(failure):
            return None
        return ConfigurationError(
            f"the PostgreSQL server at {self._target.shown} refused the connection: "
            f"{self.reason()}. Check the user, password and database name in the URL (create "
            "the database or role if it should exist); this does not pass by waiting"
        )

    def explained(self, timeout: Exception) -> Exception:
        """What to raise instead of a pool timeout: the refusal, or the same timeout naming
        the latest attempt's error."""
        refusal, reason = self.refusal(), self.reason()
        if refusal is not None:
            return refusal
        if reason is None:
            return timeout
        return type(timeout)(f"{timeout} (the last attempt to connect failed: {reason})")


def _recording(psycopg: Any, attempts: Attempts) -> type[Any]:
    """A psycopg connection class that records every attempt's outcome in `attempts`."""

    class Recorded(psycopg.Connection):  # type: ignore[misc]
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
            try:
                conn = super().connect(conninfo, **kwargs)
            except Exception as exc:
                attempts.record(exc)
                raise
            attempts.record(None)
            return conn

    return Recorded


class PgDatabase:
    """A connection pool whose connections use `target.schema` (autocommit: each statement is
    its own transaction unless a caller opens one). Thread-safe.

    A caller who gets no connection in time gets the pool's timeout naming the last
    connection error, or a ConfigurationError when that error is one waiting cannot fix
    (`is_configuration_failure`); from the first failed attempt on, such a refusal is raised
    at once until an attempt succeeds."""

    def __init__(
        self,
        target: PgTarget,
        max_size: int = 8,
        name: str = "conveyor",
        wait_for_connection: float = 5.0,
    ) -> None:
        pg, pool = import_psycopg()
        self.target = target
        self._lost: tuple[type[Exception], ...] = (pg.OperationalError, pool.PoolTimeout)
        self.errors = transient_errors()
        self._timeout = pool.PoolTimeout
        self._wait = wait_for_connection
        self.attempts = Attempts(target)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = pool.ConnectionPool(
            target.conninfo,
            connection_class=_recording(pg, self.attempts),
            kwargs={
                "autocommit": True,
                "options": f"-c search_path={target.schema}",
                "connect_timeout": 5,
            },
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=wait_for_connection,
            name=name,
        )
        self._pool.open(wait=False)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection. Connections are not checked on every checkout (that would
        double the round trips); instead, when one fails with a connection error, every idle
        one is checked, so after a server restart the next attempt gets a live connection."""
        if not self.attempts.tried.is_set():  # first use: the pool's first attempt decides
            self.attempts.tried.wait(self._wait)
        refusal = self.attempts.refusal()
        if refusal is not None:
            raise refusal
        try:
            with self._pool.connection() as conn:
                yield conn
        except self._timeout as exc:
            self._pool.check()
            raise self.attempts.explained(exc) from None
        except self._lost:
            self._pool.check()
            raise

    def close(self) -> None:
        self._pool.close()


class Listener:
    """A LISTEN connection on a thread of its own, started on first use, that counts the
    notifications of one channel so that waiters block on a condition instead of polling.

    Contract: a waiter reads `version()` *before* it checks storage, then calls `wait(version,
    timeout)`; any NOTIFY committed after the read wakes it. While the connection is down (it
    reconnects by itself with backoff) `connected` is False and waits are capped at
    `degraded_wait`, so nothing is missed — waiters fall back to re-checking twice a second.
    """

    def __init__(self, target: PgTarget, channel: str, degraded_wait: float = 0.5) -> None:
        self._target = target
        self._channel = channel
        self._degraded_wait = degraded_wait
        self._cond = threading.Condition()
        self._version = 0
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def version(self) -> int:
        self._start()
        with self._cond:
            return self._version

    def wait(self, since: int, timeout: float) -> int:
        with self._cond:
            if not self.connected:
                timeout = min(timeout, self._degraded_wait)
            self._cond.wait_for(lambda: self._version != since, timeout)
            return self._version

    def _bump(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"pg-listen-{self._channel}", daemon=True
                )
                self._thread.start()
                # Give the first LISTEN a moment so that early waits are not degraded.
                self._cond.wait_for(lambda: self.connected, 2.0)

    def _run(self) -> None:
        psycopg, _ = import_psycopg()
        pause = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._target.conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    with self._cond:
                        self.connected = True
                    self._bump()  # anything sent while we were away: make waiters re-check
                    pause = 0.1
                    self._drain(conn)
            except psycopg.Error as exc:
                log.warning(
                    "LISTEN connection to %s lost (%s: %s); reconnecting",
                    self._target.shown,
                    type(exc).__name__,
                    scrub(" ".join(str(exc).split()), self._target.conninfo),
                )
            with self._cond:
                self.connected = False
                self._cond.notify_all()
            self._stop.wait(pause)
            pause = min(pause * 2, 2.0)

    def _drain(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                self._bump()

    def close(self) -> None:
        self._stop.set()
