"""What the Redis broker and result store share: opening a client from a URL, the key prefix,
loading the Lua scripts by name, and URLs safe to show.

URL: `redis://[[user]:password@]host[:port][/db][?prefix=name]`, `rediss://…` (TLS) or
`unix:///path/redis.sock[?db=N&password=…]`; other query options go to redis-py's connection
(see docs/security.md for TLS). `prefix` (default `conveyor`) names the key space, so several
apps can share one database. Keys start `<prefix>:{<prefix>}:`; the braces are a hash tag, so
a cluster keeps every key of one prefix in one slot, as multi-key Lua scripts need.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ._urls import check_url, safe_url, scrub
from .errors import ConfigurationError

if TYPE_CHECKING:
    import redis

DEFAULT_PREFIX = "conveyor"


def import_redis() -> Any:
    """The redis module, or an error naming the extra to install."""
    try:
        import redis
    except ImportError:
        raise ConfigurationError(
            'the redis:// backend needs redis-py: pip install "conveyor[redis]"'
        ) from None
    return redis


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors that say the server cannot serve this call *now*, worth retrying: refused or
    reset connections and timeouts; a server still loading its data after a restart
    (`LOADING`); a server at `maxmemory` under `noeviction` (`OOM`, until consumers drain it or
    memory is raised); a replica that refuses writes during a failover (`READONLY`) or has
    lost its master (`MASTERDOWN`); a cluster slot in migration (`TRYAGAIN`).

    Retrying these is as safe as the first attempt: the server refuses the command before it
    runs, and a script before its first write (Redis denies `OOM` only to a script that has
    not written yet, and a replica refuses every write), so nothing was half applied."""
    redis = import_redis()
    e = redis.exceptions
    return (
        e.ConnectionError,
        e.TimeoutError,
        e.BusyLoadingError,
        e.OutOfMemoryError,
        e.ReadOnlyError,
        e.MasterDownError,
        e.TryAgainError,
    )


def client_from_url(url: str) -> tuple[redis.Redis, str]:
    """A redis-py client (its own connection pool) and the key prefix the URL names.

    Everything redis-py would silently drop or only fail on at the first connection (then
    retried for ever as if the server were down) is refused here with a ConfigurationError:
    a bad port, a path that is not a database number (`redis://host/abc` is not database 0),
    a database given twice, and query options the connection does not take. What only the
    server can refuse — a database it does not have, a wrong password — is a
    ConfigurationError at every connection's handshake (see `Handshake`).
    """
    redis = import_redis()
    parts = check_url(url, "Redis")
    if parts.scheme.lower() not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"{safe_url(url)} is not a Redis URL: use redis://, rediss:// (TLS) or unix://"
        )
    query = dict(parse_qsl(urlsplit(url).query))
    name = query.pop("prefix", DEFAULT_PREFIX)
    if not name or any(c in name for c in "{}: "):
        raise ConfigurationError(f"prefix={name!r}: use letters, digits, '-', '_' or '.'")
    if parts.scheme.lower() != "unix":
        _check_database(parts.tail, "db" in query, url)
    # Rebuilt by hand: urlunsplit would turn unix:///path into unix:/path.
    base = url.partition("?")[0].partition("#")[0]
    plain = f"{base}?{urlencode(query)}" if query else base
    try:
        client = redis.Redis.from_url(
            plain, health_check_interval=30, redis_connect_func=Handshake(url)
        )
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)  # checks options; does not connect
    except (TypeError, ValueError, redis.RedisError) as exc:
        raise ConfigurationError(f"bad Redis URL {safe_url(url)}: {scrub(str(exc), url)}") from None
    return client, f"{name}:{{{name}}}"


class Handshake:
    """redis-py's connection set-up (AUTH, SELECT, client name), its refusals made
    configuration errors.

    redis-py raises a refused SELECT (`DB index is out of range`) as a bare ResponseError, and
    a refused AUTH (WRONGPASS, NOAUTH) as an AuthenticationError, which is a ConnectionError:
    the guards would retry it for ever as an outage. Neither gets better by waiting, so the
    connection is dropped and a ConfigurationError names the database or the credentials —
    the URL masked, the password never shown.
    """

    def __init__(self, url: str) -> None:
        self._url = url

    def __call__(self, conn: Any) -> None:
        e = import_redis().exceptions
        try:
            conn.on_connect()
        except (e.ResponseError, e.AuthenticationError, e.AuthorizationError) as exc:
            problem = self._problem(conn, exc)
            conn.disconnect()
            raise ConfigurationError(problem) from None

    def _problem(self, conn: Any, exc: BaseException) -> str:
        shown, said = safe_url(self._url), scrub(str(exc), self._url)
        if isinstance(exc, import_redis().exceptions.ResponseError) and "DB index" in str(exc):
            return (
                f"the Redis server at {shown} has no database {conn.db} ({said}): it has "
                f"{_databases(conn)}. Use one of those in the URL (redis://host:port/<number>), "
                "or raise `databases` in the server's configuration"
            )
        if isinstance(exc, import_redis().exceptions.ResponseError):
            return f"the Redis server at {shown} refused to set up the connection: {said}"
        if not conn.username and not conn.password:
            return (
                f"the Redis server at {shown} wants a password ({said}): give it in the URL, "
                "as ':PASSWORD@' before the host or as ?password=PASSWORD (see docs/security.md)"
            )
        hint = ""
        if conn.username and not conn.password:
            hint = (
                f" The URL names user {conn.username!r} with no password: for a password alone "
                "put a colon before it (':PASSWORD@' before the host)."
            )
        return (
            f"the Redis server at {shown} refused the credentials ({said}): check the user and "
            "password in the URL (percent-encoded where they hold reserved characters; see "
            f"docs/security.md).{hint}"
        )


def _databases(conn: Any) -> str:
    """How many databases the server has, as CONFIG GET databases says (if it may be asked)."""
    try:
        conn.send_command("CONFIG", "GET", "databases", check_health=False)
        reply = conn.read_response()  # ["databases", "16"] (RESP2) or {"databases": "16"}
        count = int(reply[1] if isinstance(reply, list) else next(iter(reply.values())))
    except Exception:  # CONFIG may be renamed or forbidden: say how to look instead
        return "fewer databases (see CONFIG GET databases on the server)"
    return f"databases 0 to {count - 1} (CONFIG GET databases: {count})"


def _check_database(path: str, in_query: bool, url: str) -> None:
    """The path of a redis:// URL is the database number, or nothing (database 0)."""
    number = path.removeprefix("/")
    if number and not (number.isascii() and number.isdigit()):
        raise ConfigurationError(
            f"database {number!r} in {safe_url(url)} is not a number: a Redis URL reads "
            "redis://host:6379/<database number>, e.g. redis://host:6379/0; other options go "
            "in the query (?prefix=name)"
        )
    if number and in_query:
        raise ConfigurationError(
            f"{safe_url(url)} gives the database twice (in the path and as ?db=): keep one"
        )


@functools.cache
def lua_source(package: str, name: str) -> str:
    """The text of script `name`: the shared `redis_clock.lua` (P and NOW), the package's
    `_prelude.lua`, then the script."""
    files = resources.files(package)
    parts = [
        resources.files("conveyor").joinpath("redis_clock.lua"),
        files.joinpath("_prelude.lua"),
        files.joinpath(f"{name}.lua"),
    ]
    return "\n".join(part.read_text(encoding="utf-8") for part in parts)


class Scripts:
    """The Lua scripts of a package, called over one connection of their own.

    Every broker and result-store operation is one script call, so this is the hot path. It
    sends EVALSHA on a connection held for the purpose (under a lock; redis-py's connection
    API does the protocol and hiredis the parsing), skipping the per-command pool checkout and
    client layers: about a third less time per call than `client.evalsha`. A restarted server
    that lost the scripts answers NOSCRIPT, and the script is loaded and the call sent again.
    A connection error drops the connection (the next call reconnects) and is raised for the
    caller's guard to retry.
    """

    def __init__(self, client: redis.Redis, package: str, names: tuple[str, ...]) -> None:
        self._pool = client.connection_pool
        self._sources = {n: lua_source(package, n) for n in names}
        self._shas = {n: hashlib.sha1(src.encode()).hexdigest() for n, src in self._sources.items()}
        self._no_script = import_redis().exceptions.NoScriptError
        self._lock = threading.Lock()
        self._conn: Any = None

    def __call__(self, name: str, prefix: str, args: list[Any]) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = self._pool.get_connection()
            conn = self._conn
            try:
                try:
                    conn.send_command("EVALSHA", self._shas[name], 1, prefix, *args)
                    return conn.read_response()
                except self._no_script:
                    conn.send_command("SCRIPT", "LOAD", self._sources[name])
                    conn.read_response()
                    conn.send_command("EVALSHA", self._shas[name], 1, prefix, *args)
                    return conn.read_response()
            except BaseException as exc:
                if not isinstance(exc, import_redis().exceptions.ResponseError):
                    conn.disconnect()  # a reply may be half read: never reuse it
                raise

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.disconnect()
                self._pool.release(self._conn)
                self._conn = None
