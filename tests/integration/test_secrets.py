"""Every credential form conveyor accepts, against real servers, never shows its secret: not in
reprs, log lines (the test's own and a real worker's), error messages, the health file, the
worker's banner, what the worker publishes about itself, or command-line output.

Redis runs as a throwaway server of the test's own that insists on a password (TCP, Unix
socket, TLS, and an ACL user); PostgreSQL is the shared test server (trust authentication:
the password is accepted and ignored, which is enough to show it never leaks). The password
holds ':', '@', '/' and '#', written raw where a URL allows it and percent-encoded elsewhere.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
import pytest

from conveyor import Conveyor
from conveyor._postgres import PgDatabase, parse_url
from conveyor.errors import BackendUnavailable, ConfigurationError
from conveyor.guard import Guard, guard_of
from conveyor.worker.health import current, read, write

from .. import services
from .helpers import Remote, conveyor, log_of, wait_until, worker
from .secure_redis import SecureRedis
from .servers import free_port

PASSWORD = "Qzx7:Kvw3@Jmy5/Hpt9#Lrb2"
CHUNKS = ("Qzx7", "Kvw3", "Jmy5", "Hpt9", "Lrb2")  # no piece of the password may show
ENCODED = quote(PASSWORD, safe="")
RAW_AT = quote(PASSWORD, safe=":@")  # ':' and '@' raw, as drivers read them; '/' '#' encoded

Build = Callable[[SecureRedis, str, bool], str]


def leaks(text: str) -> list[str]:
    return [chunk for chunk in CHUNKS if chunk in text]


def _pg(password: str | None, tag: str, up: bool) -> str:
    """The test PostgreSQL URL with `password` in the user-info, or (None) as ?password=."""
    parts = urlsplit(services.POSTGRES_URL)
    host = f"127.0.0.1:{free_port()}" if not up else (parts.hostname or "127.0.0.1")
    if up and parts.port:
        host += f":{parts.port}"
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{host}" if password is not None else f"{user}@{host}"
    query = f"schema=sec_{tag}" + ("" if password is not None else f"&password={ENCODED}")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


FORMS: dict[str, Build] = {
    "redis-raw-at-and-colon": lambda s, t, up: (
        f"redis://:{RAW_AT}@127.0.0.1:{s.port if up else free_port()}/0?prefix={t}"
    ),
    "redis-user-and-encoded": lambda s, t, up: (
        f"redis://alice:{ENCODED}@127.0.0.1:{s.port if up else free_port()}/0?prefix={t}"
    ),
    "redis-query-password": lambda s, t, up: (
        f"redis://127.0.0.1:{s.port if up else free_port()}/0?password={ENCODED}&prefix={t}"
    ),
    "unix-query-password": lambda s, t, up: (
        f"unix://{s.socket if up else s.dir / 'absent.sock'}?password={ENCODED}&db=0&prefix={t}"
    ),
    "rediss-tls": lambda s, t, up: (
        f"rediss://:{ENCODED}@127.0.0.1:{s.tls_port if up else free_port()}/0"
        f"?ssl_cert_reqs=required&ssl_ca_certs={s.ca}&prefix={t}"
    ),
    "postgresql-userinfo": lambda s, t, up: _pg(ENCODED, t, up),
    # libpq alone ends the user-info at the first '@': the raw form must reach it whole, or
    # the password's tail goes out as a host name (DNS lookup, pool log line, errors)
    "postgresql-raw-at-and-colon": lambda s, t, up: _pg(RAW_AT, t, up),
    "postgresql-query-password": lambda s, t, up: _pg(None, t, up),
}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    server = SecureRedis(tmp_path_factory.mktemp("secure-redis"), PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tag() -> Iterator[str]:
    name = f"s{uuid.uuid4().hex[:10]}"
    yield name
    if services._postgres_problem() is None:
        services.drop_schema(f"sec_{name}")


def _require(form: str) -> None:
    if form.startswith("postgresql"):
        services.require_postgres()


@pytest.mark.parametrize("form", FORMS)
def test_no_secret_shows_while_the_server_answers(
    form: str, secure: SecureRedis, tag: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _require(form)
    url = FORMS[form](secure, tag, True)
    caplog.set_level(logging.DEBUG, logger="conveyor")
    app = Conveyor("probe", set_as_current=False)
    app.conf.broker_url = url  # a setting, so that repr(app.conf) shows it
    place = Remote(url, tmp_path)
    health = tmp_path / "worker.health"
    shown = [repr(app.conf), repr(app.conf.settings), repr(app.broker), repr(app.results)]
    try:
        with worker(
            place, "-P", "threads", "-c", "1", "-l", "debug", "--health-file", str(health)
        ) as proc:
            wait_until(lambda: health.exists() and app.broker.workers(), 60, "the worker")
            # a real call: the URL, password included, works as written
            assert app.send_task("sample.add", (2, 3)).get(timeout=60) == 5
            shown.append(msgspec.json.encode(app.broker.workers()).decode())
            shown.append(health.read_text())
            listing = conveyor(place, "queues")
            assert listing.returncode == 0, listing.stderr
            shown += [listing.stdout, listing.stderr]
            if form.startswith("postgresql"):
                status = conveyor(place, "db", "status")
                assert "***" in status.stdout, status.stdout + status.stderr
                shown += [status.stdout, status.stderr]
        banner = log_of(proc)
    finally:
        app.close()
    assert "***" in banner and "***" in shown[0], banner
    for text in [*shown, banner, caplog.text]:
        assert not leaks(text), text


@pytest.mark.parametrize("form", FORMS)
def test_no_secret_shows_when_the_server_is_unreachable(
    form: str, secure: SecureRedis, tag: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _require(form)
    url = FORMS[form](secure, tag, False)
    caplog.set_level(logging.DEBUG, logger="conveyor")
    app = Conveyor("probe", broker=url, set_as_current=False)
    app.conf.broker_retry_budget = 0.3
    health = tmp_path / "worker.health"
    try:
        with pytest.raises(BackendUnavailable) as raised:
            app.broker.queue_stats()
        if app._broker is not None:
            guard = guard_of(app._broker)
            assert guard is not None
            write(health, current("probe@host", [guard], stopping=False))
        else:
            # A PostgreSQL backend checks its schema while it opens, so an unreachable server
            # leaves no broker object to ask; its guard is wired here as open_backend wires it.
            _pg_health(url, health)
    finally:
        app.close()
    printed = conveyor(Remote(url, tmp_path), "-A", "impatient_app", "queues")
    assert printed.returncode == 2 and "did not answer" in printed.stderr, printed.stderr
    texts = [str(raised.value), caplog.text, printed.stdout, printed.stderr, health.read_text()]
    assert "unreachable" in read(health).detail
    assert "***" in str(raised.value), str(raised.value)
    for text in texts:
        assert not leaks(text), text


def _pg_health(url: str, health: Path) -> None:
    """Write the health file of a worker whose PostgreSQL broker at `url` is unreachable."""
    database = PgDatabase(parse_url(url), wait_for_connection=0.2)
    guard = Guard(f"broker at {database.target.shown}", url, database.errors, 0.3)

    def connect() -> None:
        with database.connection() as conn:
            conn.execute("SELECT 1")

    try:
        with pytest.raises(BackendUnavailable):
            guard.call(connect)
        write(health, current("probe@host", [guard], stopping=False))
    finally:
        database.close()
    assert "the last attempt to connect failed" in read(health).detail


def test_the_health_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "worker.health"
    old = os.umask(0)
    try:
        write(path, current("w@h", [], stopping=False))
        write(path, current("w@h", [], stopping=True))  # rewritten: still private
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read(path).detail == "shutting down"
    assert [p.name for p in tmp_path.iterdir()] == ["worker.health"]  # no temporary left


@pytest.mark.parametrize(
    ("userinfo", "message"),
    [
        (f":{quote('Wrong:Kvw3@Jmy5', safe='')}", "refused the credentials"),
        (f"alice:{quote('Wrong:Kvw3@Jmy5', safe='')}", "refused the credentials"),
        ("Kvw3Jmy5", "user 'Kvw3Jmy5' with no password"),  # redis-py: a user name, no password
        ("", "wants a password"),
    ],
)
def test_refused_redis_credentials_are_a_configuration_error_at_once(
    secure: SecureRedis, tag: str, tmp_path: Path, userinfo: str, message: str
) -> None:
    """redis-py raises WRONGPASS and NOAUTH as ConnectionErrors, which guards retried for ever
    as an outage (workers) or for the whole budget (producers); waiting never helps."""
    at = f"{userinfo}@" if userinfo else ""
    url = f"redis://{at}127.0.0.1:{secure.port}/0?prefix={tag}"
    app = Conveyor("probe", broker=url, set_as_current=False)
    app.conf.broker_retry_budget = 0.5  # a refusal retried as an outage ends BackendUnavailable
    try:
        with pytest.raises(ConfigurationError) as raised:
            app.broker.queue_stats()
    finally:
        app.close()
    printed = conveyor(Remote(url, tmp_path), "queues")
    assert printed.returncode == 2 and message in printed.stderr, printed.stderr
    assert message in str(raised.value)
    for text in (str(raised.value), printed.stderr):
        assert "Wrong" not in text and "Traceback" not in text, text
