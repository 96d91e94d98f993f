"""Schedule stores by URL scheme: the scheduler keeps its entries, their progress and the
leader lease in the result backend's database. See `base.py` for the contract."""

from __future__ import annotations

from ...clock import Clock
from ...config import Settings
from ...errors import ConfigurationError
from .base import Leadership, ScheduleStore, Source, StoredEntry

__all__ = ["Leadership", "ScheduleStore", "Source", "StoredEntry", "open_schedule_store"]


def open_schedule_store(url: str, settings: Settings, clock: Clock) -> ScheduleStore:
    """Open the schedule store in the database `url` names (the result backend's URL)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from ..._sqlite import sqlite_path_from_url
        from .sqlite import SqliteScheduleStore

        path, sync = sqlite_path_from_url(url)
        return SqliteScheduleStore(
            path,
            sync,
            clock,
            file_mode=settings.database_file_mode,
            retry_budget=settings.broker_retry_budget,
        )
    if scheme == "memory":
        from .memory import MemoryScheduleStore

        return MemoryScheduleStore(clock)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisScheduleStore

        return RedisScheduleStore(url, clock, settings.broker_retry_budget)
    if scheme.removeprefix("db+").split("+", 1)[0] in ("postgresql", "postgres"):
        from .postgres import PostgresScheduleStore

        return PostgresScheduleStore(
            url, clock, settings.database_create_tables_at_setup, settings.broker_retry_budget
        )
    raise ConfigurationError(
        f"no schedule store for URL scheme {scheme!r}: the scheduler keeps its schedule in the "
        "result backend, which must be sqlite:///, redis://, postgresql:// or memory://"
    )
