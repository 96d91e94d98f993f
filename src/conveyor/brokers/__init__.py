"""Brokers by URL scheme. See `base.py` for the contract every broker keeps."""

from __future__ import annotations

from ..clock import Clock
from ..config import Settings
from ..errors import ConfigurationError
from .base import Broker


def open_broker(url: str, settings: Settings, clock: Clock) -> Broker:
    """Open the broker that `url` names: `sqlite:///path.db`, `redis://…` / `rediss://…` /
    `unix://…`, `postgresql://…`, or `memory://`. A backend whose driver is missing names the
    extra to install."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .._sqlite import sqlite_path_from_url
        from .sqlite import SqliteBroker

        path, sync = sqlite_path_from_url(url)
        return SqliteBroker(
            path,
            sync,
            clock,
            settings.task_idempotency_window,
            file_mode=settings.database_file_mode,
            retry_budget=settings.broker_retry_budget,
        )
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker(clock, settings.task_idempotency_window)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBroker

        return RedisBroker(
            url, clock, settings.task_idempotency_window, settings.broker_retry_budget
        )
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresBroker

        return PostgresBroker(
            url,
            clock,
            settings.task_idempotency_window,
            settings.database_create_tables_at_setup,
            settings.broker_retry_budget,
        )
    if scheme == "amqp":
        raise ConfigurationError(
            "the amqp:// broker is not available: use redis://, postgresql:// or the embedded "
            "SQLite broker (sqlite:///conveyor.db, the default)"
        )
    raise ConfigurationError(
        f"unknown broker URL scheme {scheme!r}: use sqlite:///, redis://, rediss://, unix://, "
        "postgresql:// or memory://"
    )
