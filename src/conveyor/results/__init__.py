"""Result stores by URL scheme. See `base.py` for the contract every store keeps."""

from __future__ import annotations

from ..clock import Clock
from ..config import Settings
from ..errors import ConfigurationError
from .base import ResultStore


def open_result_store(url: str, settings: Settings, clock: Clock) -> ResultStore:
    """Open the result store that `url` names: `sqlite:///path.db`, `redis://…`,
    `postgresql://…` (also Celery's `db+postgresql://`) or `memory://`."""
    scheme = url.split(":", 1)[0].lower()
    ttl = settings.result_expires
    if scheme == "sqlite":
        from .._sqlite import sqlite_path_from_url
        from .sqlite import SqliteResultStore

        path, sync = sqlite_path_from_url(url)
        return SqliteResultStore(
            path,
            sync,
            ttl,
            clock,
            file_mode=settings.database_file_mode,
            retry_budget=settings.broker_retry_budget,
        )
    if scheme == "memory":
        from .memory import MemoryResultStore

        return MemoryResultStore(ttl, clock)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisResultStore

        return RedisResultStore(url, ttl, clock, settings.broker_retry_budget)
    if scheme.removeprefix("db+").split("+", 1)[0] in ("postgresql", "postgres"):
        from .postgres import PostgresResultStore

        return PostgresResultStore(
            url, ttl, clock, settings.database_create_tables_at_setup, settings.broker_retry_budget
        )
    raise ConfigurationError(
        f"unknown result backend URL scheme {scheme!r}: use sqlite:///, redis://, postgresql:// or memory://"
    )
