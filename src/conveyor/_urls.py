"""Server URLs made safe to show: the one masker for every URL form conveyor accepts.

Everything that shows a URL or a driver's error text goes through here: worker and beat banners,
log lines, `BackendUnavailable` and `ConfigurationError` messages, the health file, reprs of the
app's settings and of brokers and stores, and CLI output.

What counts as a secret:
* the password of the user-info part, `scheme://user:password@host` → `scheme://user:***@host`.
  A user-info without a colon is a user name for the schemes conveyor connects to (libpq reads
  `postgresql://postgres@host` as user `postgres`; redis-py reads `redis://name@host` as user
  `name` with no password) and is shown; for any other scheme (a URL inside a library's
  message) it is hidden whole → `scheme://***@host`, since its client may read it otherwise;
* the value of every query parameter whose name holds `pass`, `pwd`, `secret` or `token`
  (`?password=` as redis-py documents for `unix://`, libpq's `?password=` and `?sslpassword=`,
  on any scheme) → `?password=***`.

The user-info ends at the *last* `@` before the query, so passwords holding `@`, `:` or even an
unencoded `/` are hidden whole (the old "first @" masker showed their tail). redis-py reads an
unencoded `@` the same way; libpq ends the user-info at the *first* `@`, so the PostgreSQL
backends hand it the user-info with every `@` percent-encoded (`libpq_netloc`). Drivers split
URLs at the first `/`, `?` or `#`; `check_url` refuses URLs whose drivers would read part of the
password as the host or port, asking for percent-encoding instead.

Free text (`scrub`) is cleared of the URL's secrets wherever they appear, except secrets shorter
than `MIN_SCRUBBED` characters: blanking every `1` or `pw` in a message would mangle host names
and numbers while hiding nothing worth hiding (URLs in the text are still masked by structure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus, urlsplit

from .errors import ConfigurationError

MASK = "***"
MIN_SCRUBBED = 4  # shorter secrets are not blanked from free text (see the module docstring)
# Schemes whose drivers read a user-info without a colon as a user name (libpq, redis-py).
_USER_NAME_SCHEMES = frozenset({"postgresql", "postgres", "redis", "rediss", "unix"})
_SECRET_NAME = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
# A URL inside free text (a log line, a driver's message): scheme://, then up to a blank or quote.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*")


@dataclass(frozen=True, slots=True)
class UrlParts:
    """A URL split the way the masker reads it: `userinfo` is None when there is none;
    `hosts` is the host[:port] list (several for libpq's multi-host form), `tail` the path,
    `query` the text after `?` (fragment included: backend URLs have none)."""

    scheme: str
    userinfo: str | None
    hosts: str
    tail: str
    query: str | None


def split(url: str) -> UrlParts | None:
    """The parts of `url`, or None when it has no `scheme://`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    userinfo = None
    if not rest.startswith("/"):  # scheme:///path (unix://, sqlite://) has no user-info
        q = _first(rest, "?#")
        at = rest.rfind("@", 0, q)
        last = rest.rfind("@")
        if at < 0 and last > q and "=" not in rest[q:last]:
            at = last  # a password holding an unencoded ? or #
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
    q = rest.find("?")
    query = rest[q + 1 :] if q >= 0 else None
    rest = rest[:q] if q >= 0 else rest
    slash = rest.find("/")
    hosts, tail = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    return UrlParts(scheme, userinfo, hosts, tail, query)


def _first(text: str, chars: str) -> int:
    found = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(found) if found else len(text)


def _names_a_user(scheme: str) -> bool:
    """True when a colon-less user-info is a user name for `scheme` (`db+postgresql`
    included), False when it may be a password."""
    return scheme.lower().removeprefix("db+").split("+", 1)[0] in _USER_NAME_SCHEMES


def _mask_userinfo(scheme: str, userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    if colon:
        return f"{user}:{MASK}"
    return userinfo if _names_a_user(scheme) else MASK


def _mask_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        pieces.append(f"{name}={MASK}" if eq and _SECRET_NAME.search(unquote(name)) else piece)
    return "&".join(pieces)


def safe_url(url: str) -> str:
    """`url` with every secret it holds replaced by *** (see the module docstring); a text
    that is not a URL is returned as it is."""
    parts = split(url)
    if parts is None:
        return url
    userinfo = "" if parts.userinfo is None else _mask_userinfo(parts.scheme, parts.userinfo) + "@"
    query = "" if parts.query is None else "?" + _mask_query(parts.query)
    return f"{parts.scheme}://{userinfo}{parts.hosts}{parts.tail}{query}"


def secrets_of(url: str) -> set[str]:
    """Every secret `url` holds, raw and percent-decoded, as a driver may quote them."""
    parts = split(url)
    if parts is None:
        return set()
    raw: list[str] = []
    if parts.userinfo is not None:
        user, colon, password = parts.userinfo.partition(":")
        if colon:
            raw.append(password)
        elif not _names_a_user(parts.scheme):
            raw.append(user)
    for piece in (parts.query or "").split("&"):
        name, eq, value = piece.partition("=")
        if eq and _SECRET_NAME.search(unquote(name)):
            raw.append(value)
    found = {form for r in raw for form in (r, unquote(r), unquote_plus(r))}
    found.discard("")
    return found


def mask_urls_in(text: str) -> str:
    """`text` with every URL in it shown safely (a last line of defence for log lines and
    error messages built from texts conveyor did not write)."""
    if "://" not in text:  # every URL the pattern finds has one; most log lines have none
        return text
    return _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), text)


def scrub(text: str, url: str) -> str:
    """`text` (a driver's error message) with `url` shown safely, any other URL masked, and
    every secret of `url` of at least MIN_SCRUBBED characters blanked wherever it appears, raw
    or percent-decoded."""
    text = mask_urls_in(text.replace(url, safe_url(url)))
    found = (s for s in secrets_of(url) if len(s) >= MIN_SCRUBBED)
    for secret in sorted(found, key=len, reverse=True):  # longest first
        text = text.replace(secret, MASK)
    return text


def check_url(url: str, what: str) -> UrlParts:
    """The parts of a server URL, refusing what a driver would misread: a password holding
    an unencoded `/`, `?` or `#` (a driver would take part of it for the host or port), and a
    port that is not a number from 1 to 65535. Messages show the URL masked."""
    parts = split(url)
    if parts is None:
        raise ConfigurationError(f"{safe_url(url)} is not a {what} URL (scheme://host...)")
    if parts.userinfo is not None and urlsplit(url).netloc != f"{parts.userinfo}@{parts.hosts}":
        raise ConfigurationError(
            f"the user or password in {safe_url(url)} holds '/', '?' or '#': percent-encode "
            "them (%2F, %3F, %23) so the driver reads the whole password"
        )
    for host in parts.hosts.split(","):
        check_port(_port_text(host), url)
    return parts


def libpq_netloc(url: str) -> str:
    """The host part of `url` (user-info included) as libpq must be given it: libpq ends the
    user-info at the first `@`, so a password holding an unencoded `@` would send its tail to
    the resolver as a host name. Every `@` of the user-info (which ends at the last `@`, as
    redis-py and Python read it) is percent-encoded."""
    parts = split(url)
    if parts is None or parts.userinfo is None:
        return urlsplit(url).netloc
    return f"{parts.userinfo.replace('@', '%40')}@{parts.hosts}"


def _port_text(host: str) -> str:
    if host.startswith("["):  # an IPv6 address: [::1]:6379
        return host.partition("]")[2].removeprefix(":")
    return host.rpartition(":")[2] if ":" in host else ""


def check_port(port: str, url: str) -> None:
    """Refuse a port (as written, "" for none) that is not a number from 1 to 65535."""
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ConfigurationError(
            f"port {port!r} in {safe_url(url)} is not a port number: use a number from 1 to "
            "65535, or leave it out for the default"
        )


# -- Celery's result backend URLs ----------------------------------------------------------
#: SQLAlchemy dialects of Celery's `db+` URLs conveyor has a store for: dialect → scheme.
_DB_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
#: Celery result backends conveyor has no store for, and what to write instead.
_NO_STORE = {
    "amqp": "Celery 5 removed the amqp result backend (rpc:// replaced it)",
    "django-cache": "django_celery_results keeps them in Django's cache",
    "cache+memcached": "conveyor has no memcached store",
    "mongodb": "conveyor has no MongoDB store",
}
_STORES_HINT = (
    "name one of conveyor's stores instead: the broker's own database (leave result_backend "
    "unset), sqlite:///results.db, redis://… or postgresql://… (for Django, the URL of the "
    "project's PostgreSQL database works)"
)


def result_store_url(url: str, broker_url: str) -> str:
    """A result backend URL as conveyor's stores read it. `rpc://` (Celery's tutorial: results
    sent back to the caller over the broker) is the store beside the broker, `broker_url`.
    Celery's SQLAlchemy URLs map onto the stores of the same database: `db+sqlite:///results.db`
    → `sqlite:///results.db`, `db+postgresql+psycopg2://u@h/db` → `postgresql://u@h/db` (the
    driver part is dropped: conveyor uses its own). Other `db+` dialects and Celery backends
    conveyor has no store for (`django-cache`, `cache+memcached://`, …) raise ConfigurationError
    saying what to use; every other URL is returned unchanged (`django-db` is mapped onto the
    Django project's database by conveyor.contrib.django.results)."""
    scheme, sep, rest = url.partition("://")
    lowered = scheme.lower() if sep else url.lower()
    if lowered == "rpc":
        return broker_url
    if lowered in _NO_STORE or lowered.split("+", 1)[0] in ("amqp", "mongodb"):
        reason = _NO_STORE.get(lowered) or _NO_STORE[lowered.split("+", 1)[0]]
        raise ConfigurationError(
            f"result_backend {safe_url(url)!r} is refused: {reason}. {_STORES_HINT}"
        )
    if not lowered.startswith("db+"):
        return url
    dialect = lowered.removeprefix("db+").split("+", 1)[0]
    if dialect not in _DB_DIALECTS:
        raise ConfigurationError(
            f"result_backend {safe_url(url)!r} is refused: conveyor has no {dialect} store. "
            f"{_STORES_HINT}"
        )
    if dialect == "sqlite" and rest in ("", "/"):
        raise ConfigurationError(
            f"result_backend {url!r} names SQLAlchemy's in-memory SQLite database, which no "
            "other process can read: name a file, db+sqlite:///results.db"
        )
    return f"{_DB_DIALECTS[dialect]}://{rest}"
