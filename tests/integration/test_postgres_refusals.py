"""PostgreSQL connections that fail for a reason waiting cannot fix — a database or a role that
does not exist, a refused password — are ConfigurationErrors at once, for producers, workers and
`conveyor db status`; an unreachable server is still an outage, but every error and the health
reason name the last connection error instead of psycopg_pool's bare `PoolTimeout`. Against the
real test server (trust authentication: a wrong password cannot be shown with it, so that case
is checked on libpq's message)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor._postgres import PgDatabase, is_configuration_failure, parse_url
from conveyor.errors import BackendUnavailable
from conveyor.guard import Guard
from conveyor.worker.health import current, read, write

from .. import services
from .helpers import Remote, conveyor
from .servers import free_port


def _url(*, user: str | None = None, database: str | None = None, port: int | None = None) -> str:
    parts = urlsplit(services.POSTGRES_URL)
    name = user or parts.username or "postgres"
    host = f"{parts.hostname or '127.0.0.1'}:{port or parts.port or 5432}"
    path = f"/{database}" if database else parts.path
    return urlunsplit((parts.scheme, f"{name}:pw1secret@{host}", path, "schema=refused", ""))


def _missing(what: str) -> str:
    """A URL naming a database or a role the server does not have."""
    name = f"no{what}_{uuid.uuid4().hex[:8]}"
    return _url(database=name) if what == "database" else _url(user=name)


@pytest.mark.parametrize("what", ["database", "role"])
def test_a_missing_database_or_role_is_a_configuration_error_at_once(
    what: str, tmp_path: Path
) -> None:
    services.require_postgres()
    said = f'{what} "no{what}_'
    url = _missing(what)
    app = Conveyor("probe", broker=url, set_as_current=False)
    app.conf.broker_retry_budget = 5.0  # retried as an outage, it would end BackendUnavailable
    try:
        with pytest.raises(ConfigurationError) as raised:
            app.broker.queue_stats()
    finally:
        app.close()
    message = str(raised.value)
    assert said in message and "refused the connection" in message
    assert "pw1secret" not in message and "postgresql://" in message
    place = Remote(url, tmp_path)
    for command in (["db", "status"], ["worker", "-P", "solo"]):
        out = conveyor(place, "-A", "sample_app", *command)
        assert out.returncode == 2, out.stderr
        assert said in out.stderr and "Traceback" not in out.stderr
        assert "pw1secret" not in out.stderr


def test_an_unreachable_server_is_an_outage_naming_the_last_connection_error(
    tmp_path: Path,
) -> None:
    url = _url(port=free_port())
    app = Conveyor("probe", broker=url, set_as_current=False)
    app.conf.broker_retry_budget = 0.5
    try:
        with pytest.raises(BackendUnavailable) as raised:
            app.broker.queue_stats()
    finally:
        app.close()
    assert "the last attempt to connect failed" in str(raised.value)
    assert "Connection refused" in str(raised.value), str(raised.value)
    # the reason a worker's health file gives, from a guard wired as the backends wire it
    database = PgDatabase(parse_url(url), wait_for_connection=0.2)
    guard = Guard(f"broker at {database.target.shown}", url, database.errors, 0.5)
    health = tmp_path / "worker.health"
    try:
        with pytest.raises(BackendUnavailable):
            guard.call(_connect, database)
        write(health, current("probe@host", [guard], stopping=False))
    finally:
        database.close()
    detail = read(health).detail
    assert "unreachable" in detail and "Connection refused" in detail, detail
    assert "pw1secret" not in health.read_text()
    out = conveyor(Remote(url, tmp_path), "-A", "sample_app", "db", "status")
    assert out.returncode == 2, out.stderr
    assert "did not answer" in out.stderr and "Connection refused" in out.stderr
    assert "Traceback" not in out.stderr and "pw1secret" not in out.stderr


def _connect(database: PgDatabase) -> None:
    with database.connection() as conn:
        conn.execute("SELECT 1")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ('connection failed: FATAL:  password authentication failed for user "app"', True),
        ('FATAL:  role "app" does not exist', True),
        ('FATAL:  database "jobs" does not exist', True),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.5", user "app", database "jobs"', True),
        ("fe_sendauth: no password supplied", True),
        ("Connection refused\n\tIs the server running on that host", False),
        ("FATAL:  the database system is starting up", False),
        ("FATAL:  sorry, too many clients already", False),
    ],
)
def test_libpq_failures_waiting_cannot_fix_are_told_from_outages(text: str, refused: bool) -> None:
    assert is_configuration_failure(Exception(text)) is refused
