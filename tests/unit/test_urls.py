"""The one URL masker, and URLs refused when parsed instead of failing at first connection
(where they would be retried for ever as if the server were down)."""

from __future__ import annotations

import logging

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor._postgres import parse_url
from conveyor._redis import client_from_url
from conveyor._urls import mask_urls_in, safe_url, scrub, secrets_of
from conveyor.cli.context import MaskingFormatter

# (url, shown, secrets): every credential form conveyor accepts
FORMS = [
    ("redis://:pw1@h", "redis://:***@h", {"pw1"}),
    ("redis://user:pw1@h:6380/2?prefix=p", "redis://user:***@h:6380/2?prefix=p", {"pw1"}),
    ("redis://:p@ss:w0rd@h/0", "redis://:***@h/0", {"p@ss:w0rd"}),
    ("redis://u:p%40ss%2Fw%3Ad@h/0", "redis://u:***@h/0", {"p%40ss%2Fw%3Ad", "p@ss/w:d"}),
    ("redis://:a/b@h/0", "redis://:***@h/0", {"a/b"}),  # unencoded '/': refused, but masked
    ("redis://:pa?ss@h/0", "redis://:***@h/0", {"pa?ss"}),
    ("redis://alice@h", "redis://alice@h", set()),  # redis-py: user alice, no password
    ("postgresql://postgres@h/db", "postgresql://postgres@h/db", set()),  # libpq: a user name
    ("amqp://lonely@h", "amqp://***@h", {"lonely"}),  # another client: maybe a password, hidden
    ("postgresql://u:Se@cretpw@h/db", "postgresql://u:***@h/db", {"Se@cretpw"}),
    ("unix:///run/r.sock?password=pw1&db=2", "unix:///run/r.sock?password=***&db=2", {"pw1"}),
    ("unix://:pw1@/run/r.sock", "unix://:***@/run/r.sock", {"pw1"}),
    ("redis://h/0?password=p%26w&prefix=x", "redis://h/0?password=***&prefix=x", {"p%26w", "p&w"}),
    (
        "rediss://u:pw1@h:6380/0?ssl_cert_reqs=required",
        "rediss://u:***@h:6380/0?ssl_cert_reqs=required",
        {"pw1"},
    ),
    ("postgresql://user:pw1@h/db", "postgresql://user:***@h/db", {"pw1"}),
    ("postgresql://h/db?password=pw1&schema=s", "postgresql://h/db?password=***&schema=s", {"pw1"}),
    ("postgresql://h/db?sslpassword=k3y", "postgresql://h/db?sslpassword=***", {"k3y"}),
    (
        "db+postgresql://u:pw1@h1:5432,h2:5433/db",
        "db+postgresql://u:***@h1:5432,h2:5433/db",
        {"pw1"},
    ),
    ("sqlite:///conveyor.db", "sqlite:///conveyor.db", set()),
    ("sqlite:////srv/a@b.db", "sqlite:////srv/a@b.db", set()),
    ("memory://", "memory://", set()),
    ("redis://[::1]:6379/0", "redis://[::1]:6379/0", set()),
]


@pytest.mark.parametrize(("url", "shown", "secrets"), FORMS)
def test_every_form_is_shown_without_its_secrets(url: str, shown: str, secrets: set[str]) -> None:
    assert safe_url(url) == shown
    assert secrets_of(url) >= secrets
    assert not any(s in safe_url(url) for s in secrets_of(url))


def test_scrub_blanks_the_url_and_every_form_of_its_secrets() -> None:
    url = "redis://:p%40ss@h/0?password=t%26k9"
    text = f"Error for {url}; AUTH p@ss failed; token t&k9; also postgresql://u:zz9@db/x"
    assert scrub(text, url) == (
        "Error for redis://:***@h/0?password=*** AUTH *** failed; token ***; "
        "also postgresql://u:***@db/x"
    )


def test_a_colon_less_user_name_is_shown_and_short_secrets_do_not_blank_free_text() -> None:
    url = "postgresql://postgres@h/db"
    text = f'FATAL: password authentication failed for user "postgres" on {url}'
    assert scrub(text, url) == text  # libpq's user name is not a secret
    short = "redis://127.0.0.1:6379/0?passwd=1"
    shown = scrub(f"Error 111 connecting to 127.0.0.1:6379 for {short} after 1 try", short)
    assert shown == (
        "Error 111 connecting to 127.0.0.1:6379 for redis://127.0.0.1:6379/0?passwd=*** after 1 try"
    )
    assert scrub("AUTH s3c failed", "redis://:s3c@h/0") == "AUTH s3c failed"  # under 4
    assert scrub("AUTH s3cr failed", "redis://:s3cr@h/0") == "AUTH *** failed"


def test_a_raw_at_in_a_postgres_password_reaches_libpq_whole() -> None:
    from psycopg.conninfo import conninfo_to_dict

    target = parse_url("postgresql://u:Se@cretpw@127.0.0.1:5432/test?schema=s")
    read = conninfo_to_dict(target.conninfo)
    assert (read["user"], read["password"]) == ("u", "Se@cretpw")
    assert (read["host"], read["port"], read["dbname"]) == ("127.0.0.1", "5432", "test")
    assert "cretpw" not in target.shown and "cretpw" not in repr(target)
    multi = conninfo_to_dict(parse_url("postgresql://a@b:p@w:x@h1:5432,h2:5433/db").conninfo)
    assert (multi["user"], multi["password"], multi["host"]) == ("a@b", "p@w:x", "h1,h2")
    encoded = conninfo_to_dict(parse_url("postgresql://u:p%40w%25@h/db").conninfo)
    assert encoded["password"] == "p@w%"  # an encoded password is passed on as written


def test_urls_inside_free_text_are_masked() -> None:
    # a URL runs to the next blank: what follows a secret query value is masked with it
    text = "bad URL redis://:a/b@h/0: oops (unix:///s.sock?password=pw1) and sqlite:///x.db"
    assert mask_urls_in(text) == (
        "bad URL redis://:***@h/0: oops (unix:///s.sock?password=*** and sqlite:///x.db"
    )


def test_log_lines_of_the_command_line_mask_urls_tracebacks_included() -> None:
    formatter = MaskingFormatter("%(message)s")
    try:
        raise RuntimeError("cannot reach redis://:pw1@h/0")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "conveyor", logging.ERROR, __file__, 1, "at %s", ("rediss://u:pw2@h",), sys.exc_info()
        )
    line = formatter.format(record)
    assert "pw1" not in line and "pw2" not in line and "rediss://u:***@h" in line


def test_reprs_of_the_settings_mask_the_urls() -> None:
    app = Conveyor("x", set_as_current=False)
    app.conf.broker_url = "redis://:pw1@h/0"
    app.conf.result_backend = "postgresql://h/db?password=pw2"
    for shown in (repr(app.conf), repr(app.conf.settings)):
        assert "pw1" not in shown and "pw2" not in shown
        assert "redis://:***@h/0" in shown and "password=***" in shown
    assert app.conf.broker_url == "redis://:pw1@h/0"  # the value itself is untouched
    with pytest.raises(ConfigurationError, match="given twice") as raised:
        app.conf.update(BROKER_URL="redis://:pw3@h", broker_url="redis://:pw4@h")
    assert "pw3" not in str(raised.value) and "pw4" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h/abc", "database 'abc' in redis://h/abc is not a number"),
        ("redis://:pw1@h/0x1", "database '0x1'"),
        ("redis://h/1/2", "database '1/2'"),
        ("redis://h/3?db=4", "gives the database twice"),
        ("redis://h:abc/0", "port 'abc' in redis://h:abc/0 is not a port number"),
        ("redis://h:0/0", "port '0'"),
        ("redis://h:65536/0", "port '65536'"),
        ("redis://:pw1@h:-1/0", "port '-1'"),
        ("redis://:a/pw1@h/0", "percent-encode"),
        ("redis://h/0?no_such_option=1", "no_such_option"),
        ("redis://h/0?protocol=5", "protocol"),
        ("rediss://h/0?ssl_cert_reqs=sometimes", "sometimes"),
        ("unix:///s.sock?db=abc", "db"),
        ("http://h/0", "not a Redis URL"),
    ],
)
def test_bad_redis_urls_are_refused_when_parsed(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        client_from_url(url)
    assert message in str(raised.value)
    assert "pw1" not in str(raised.value)


def test_redis_tls_and_socket_options_reach_the_connection() -> None:
    client, _ = client_from_url(
        "rediss://alice:pw1@cache:6380/2?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
        "&ssl_check_hostname=true&ssl_certfile=/etc/client.pem&ssl_keyfile=/etc/client.key&prefix=p"
    )
    pool = client.connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    kwargs = pool.connection_kwargs
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("required", "/etc/ca.pem")
    assert kwargs["ssl_check_hostname"] is True and kwargs["db"] == 2
    assert (kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == ("/etc/client.pem", "/etc/client.key")
    assert (kwargs["username"], kwargs["password"]) == ("alice", "pw1")
    unix, _ = client_from_url("unix:///run/redis.sock?password=p%40w&db=3")
    kwargs = unix.connection_pool.connection_kwargs
    assert (kwargs["path"], kwargs["password"], kwargs["db"]) == ("/run/redis.sock", "p@w", 3)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:pw1@h:abc/db", "port 'abc'"),
        ("postgresql://h:99999/db", "port '99999'"),
        ("postgresql://h1:5432,h2:x/db", "port 'x'"),
        ("postgresql://h/db?port=0", "port '0'"),
        ("postgresql://h/db?password=pw1&no_such=1", 'invalid URI query parameter: "no_such"'),
        ("postgresql://h/db?password=pw1&sslmode=sometimes", "sslmode='sometimes'"),
        ("postgresql://:a/pw1@h/db", "percent-encode"),
    ],
)
def test_bad_postgres_urls_are_refused_when_parsed(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_url(url)
    assert message in str(raised.value)
    assert "pw1" not in str(raised.value)


def test_postgres_tls_options_go_to_libpq() -> None:
    target = parse_url(
        "postgresql://app:pw1@db.internal:5433/jobs?sslmode=verify-full"
        "&sslrootcert=/etc/ca.pem&schema=billing"
    )
    assert target.schema == "billing" and "pw1" not in target.shown
    assert "sslmode=verify-full" in target.conninfo and "sslrootcert=" in target.conninfo
    assert "schema" not in target.conninfo
    multi = parse_url("postgresql://u@h1:5432,h2:5433/db")
    assert "h1:5432,h2:5433" in multi.conninfo
