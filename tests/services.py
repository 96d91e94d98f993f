"""Reaching the Redis and PostgreSQL servers the tests use.

`CONVEYOR_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/13`) and `CONVEYOR_TEST_POSTGRES_URL`
(default `postgresql://postgres@127.0.0.1:5432/test`). A test that needs a server that does
not answer is skipped with the server named — unless `CONVEYOR_REQUIRE_SERVICES=1` (CI), where
it fails. Each test works under a key prefix or schema of its own and removes it afterwards.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _required() -> bool:
    return os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1"


@functools.cache
def _redis_problem() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is not reachable ({type(exc).__name__}: {exc})"
    return None


def require_redis() -> None:
    """Skip (or, with CONVEYOR_REQUIRE_SERVICES=1, fail) when the test Redis is down."""
    problem = _redis_problem()
    if problem is None:
        return
    if _required():
        pytest.fail(f"{problem}; CONVEYOR_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(f"needs Redis: {problem}")


@functools.cache
def _postgres_problem() -> str | None:
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(exc).__name__}: {exc})"
    return None


def require_postgres() -> None:
    """Skip (or, with CONVEYOR_REQUIRE_SERVICES=1, fail) when the test PostgreSQL is down."""
    problem = _postgres_problem()
    if problem is None:
        return
    if _required():
        pytest.fail(f"{problem}; CONVEYOR_REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(f"needs PostgreSQL: {problem}")


def postgres_url(schema: str) -> str:
    """The test PostgreSQL URL with a schema of the test's own."""
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}"


def drop_schema(schema: str) -> None:
    """Remove a test's schema and everything in it."""
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def redis_url(prefix: str) -> str:
    """The test Redis URL with a key prefix of the test's own."""
    separator = "&" if "?" in REDIS_URL else "?"
    return f"{REDIS_URL}{separator}prefix={prefix}"


def drop_prefix(prefix: str) -> None:
    """Delete every key of a Redis key prefix (as `redis_url(prefix)` names it)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


def drop_keys(backend: Any) -> None:
    """Delete every key under a Redis backend's prefix, or a PostgreSQL backend's schema
    (no-op for other backends)."""
    schema = getattr(backend, "schema", None)
    if schema is not None:
        backend.close()
        drop_schema(schema)
        return
    prefix = getattr(backend, "prefix", None)
    client = getattr(backend, "_client", None)
    if prefix is None or client is None:
        return
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


BACKENDS = ("memory", "sqlite", "redis", "postgres")


def backend_url(kind: str, tag: str, directory: Path) -> str:
    """A URL of `kind` (one of BACKENDS) of the test's own: a Redis prefix or PostgreSQL schema
    named `tag`, or an SQLite file in `directory`; requires the server it needs."""
    if kind == "redis":
        require_redis()
        return redis_url(tag)
    if kind == "postgres":
        require_postgres()
        return postgres_url(tag)
    if kind == "sqlite":
        return f"sqlite:///{directory / 'q.db'}"
    return "memory://"
