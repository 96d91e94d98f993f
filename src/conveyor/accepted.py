"""Celery settings conveyor accepts without needing them, and why each is harmless.

Real Celery projects set these for RabbitMQ, kombu's connection pools or Celery's own polling
loops. conveyor's design already gives what they ask for (or has nothing they could tune), so
a project keeps them unchanged: each value is checked as Celery would check it, stored, and
readable back through `app.conf`. A value asking for behaviour conveyor does not have (say
`worker_cancel_long_running_tasks_on_connection_loss=True`) is refused with the reason, never
silently dropped. `docs/reference.md` lists them with the `why` given here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

Check = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class Accepted:
    """One accepted setting: Celery's default, its check, and what conveyor does instead."""

    default: Any
    check: Check
    why: str


def _flag(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise ConfigurationError(f"setting {name} must be True or False; got {value!r}")
    return value


def _maybe_flag(name: str, value: Any) -> Any:
    return None if value is None else _flag(name, value)


def _number(name: str, value: Any) -> Any:
    """A number of seconds, retries or connections, 0 or more, or None (Celery: no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(
            f"setting {name} must be a number, 0 or more, or None; got {value!r}"
        )
    return value


def _text(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise ConfigurationError(f"setting {name} must be a string; got {value!r}")
    return value


def _mapping(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"setting {name} must be a dict; got {value!r}")
    return dict(value)


def _one_of(*allowed: Any) -> Check:
    def check(name: str, value: Any) -> Any:
        if value not in allowed:
            raise ConfigurationError(
                f"setting {name}={value!r}: use one of {', '.join(map(repr, allowed))}"
            )
        return value

    return check


def _only(value_ok: Any, reason: str) -> Check:
    """A flag accepted at the one value that matches what conveyor does."""

    def check(name: str, value: Any) -> Any:
        _flag(name, value)
        if value != value_ok:
            raise ConfigurationError(f"setting {name}={value!r} is refused: {reason}")
        return value

    return check


_RETRY = "a lost broker or result-store connection is retried for broker_retry_budget seconds"
_AMQP = (
    "an AMQP setting; conveyor's brokers are SQLite, Redis and PostgreSQL, which have no use for it"
)
_EVENTS = (
    "conveyor keeps task events in the broker's own bounded, expiring stream (conveyor events)"
)
_CONNECT = "each conveyor process opens its own connections; there is no pool to size or time"
_REDIS_RESULTS = (
    "conveyor's Redis connections are its own (health-checked, and failed operations retried "
    "within broker_retry_budget), not tuned by Celery's Redis backend options"
)

ACCEPTED: Mapping[str, Accepted] = {
    "broker_connection_retry_on_startup": Accepted(
        None, _maybe_flag, f"{_RETRY}, then the operation fails"
    ),
    "broker_connection_retry": Accepted(True, _flag, _RETRY),
    "broker_connection_max_retries": Accepted(100, _number, f"{_RETRY} (a time, not a count)"),
    "broker_connection_timeout": Accepted(4.0, _number, _RETRY),
    "broker_channel_error_retry": Accepted(False, _flag, _AMQP),
    "broker_heartbeat": Accepted(
        120, _number, f"{_AMQP}; workers prove they are alive by heartbeats in the broker"
    ),
    "broker_heartbeat_checkrate": Accepted(3.0, _number, _AMQP),
    "broker_pool_limit": Accepted(10, _number, _CONNECT),
    "broker_pool_acquire_timeout": Accepted(None, _number, _CONNECT),
    "task_default_delivery_mode": Accepted(
        2,
        _one_of(1, 2, "transient", "persistent"),
        "conveyor stores every message durably, transient ones included",
    ),
    "task_default_queue_type": Accepted(
        "classic", _one_of("classic", "quorum"), f"{_AMQP} (RabbitMQ queue types)"
    ),
    "task_create_missing_queue_type": Accepted(
        "classic", _one_of("classic", "quorum"), f"{_AMQP} (RabbitMQ queue types)"
    ),
    "result_persistent": Accepted(
        None, _maybe_flag, "for AMQP results; conveyor's result stores are durable"
    ),
    "result_chord_join_timeout": Accepted(
        3.0, _number, "conveyor joins a chord by counting its members in the store, no polling"
    ),
    "result_chord_retry_interval": Accepted(
        1.0, _number, "conveyor joins a chord by counting its members in the store, no polling"
    ),
    "result_backend_always_retry": Accepted(False, _flag, _RETRY),
    "result_backend_max_retries": Accepted(float("inf"), _number, _RETRY),
    "result_backend_base_sleep_between_retries_ms": Accepted(10, _number, _RETRY),
    "result_backend_max_sleep_between_retries_ms": Accepted(10000, _number, _RETRY),
    "redis_max_connections": Accepted(None, _number, _CONNECT),
    "redis_socket_timeout": Accepted(120.0, _number, _REDIS_RESULTS),
    "redis_socket_connect_timeout": Accepted(None, _number, _REDIS_RESULTS),
    "redis_retry_on_timeout": Accepted(False, _flag, _REDIS_RESULTS),
    "redis_socket_keepalive": Accepted(False, _flag, _REDIS_RESULTS),
    "redis_backend_health_check_interval": Accepted(None, _number, _REDIS_RESULTS),
    "database_engine_options": Accepted(
        {}, _mapping, "conveyor talks to SQLite and PostgreSQL itself, not through SQLAlchemy"
    ),
    "database_short_lived_sessions": Accepted(
        False, _flag, "conveyor talks to SQLite and PostgreSQL itself, not through SQLAlchemy"
    ),
    "event_queue_expires": Accepted(60.0, _number, _EVENTS),
    "event_queue_ttl": Accepted(5.0, _number, _EVENTS),
    "event_queue_prefix": Accepted("celeryev", _text, _EVENTS),
    "event_exchange": Accepted("celeryev", _text, _EVENTS),
    "event_serializer": Accepted(
        "json", _one_of("json"), f"{_EVENTS}; events are JSON, like every conveyor message"
    ),
    "beat_sync_every": Accepted(
        0, _number, "the scheduler writes each fire to its store as it happens"
    ),
    "worker_timer_precision": Accepted(
        1.0, _number, "delayed calls wait in the broker, not in a worker's timer"
    ),
    "worker_proc_alive_timeout": Accepted(
        4.0,
        _number,
        "a new pool child reports ready through its pipe; the worker serves other slots meanwhile",
    ),
    "worker_lost_wait": Accepted(
        10.0,
        _number,
        "a call whose pool child died follows its lease and task_reject_on_worker_lost, no wait",
    ),
    "worker_enable_remote_control": Accepted(
        True,
        _flag,
        "conveyor workers have no broadcast mailbox to turn off (Celery's pidbox queues); "
        "revoke is stored in the broker and obeyed by every worker either way",
    ),
    "worker_cancel_long_running_tasks_on_connection_loss": Accepted(
        False,
        _only(
            False,
            "conveyor never cancels a running call on a lost connection: the worker keeps "
            "renewing its lease, and a call whose lease is lost is reported",
        ),
        "a running call keeps running; its lease decides who settles it",
    ),
}


#: `broker_transport_options` keys accepted without being needed, and why (kombu's Redis and
#: publishing options, as Celery's docs set them).
TRANSPORT_OPTIONS: Mapping[str, str] = {
    "priority_steps": "conveyor keeps ten priority bands, 0–9, on every backend",
    "sep": "conveyor's Redis keys have a layout of their own",
    "queue_order_strategy": "the order a worker drains its queues is worker_queue_order "
    "(strict: first listed first; weighted)",
    "max_retries": _RETRY,
    "interval_start": _RETRY,
    "interval_step": _RETRY,
    "interval_max": _RETRY,
    "socket_timeout": _REDIS_RESULTS,
    "socket_connect_timeout": _REDIS_RESULTS,
    "socket_keepalive": _REDIS_RESULTS,
    "health_check_interval": _REDIS_RESULTS,
    "retry_on_timeout": _REDIS_RESULTS,
    "fanout_prefix": "conveyor has no broadcast (fanout) queues",
    "fanout_patterns": "conveyor has no broadcast (fanout) queues",
    "confirm_publish": "an enqueue returns once the broker has stored the call",
    "polling_interval": "workers wait on the broker for calls (a blocking reserve); no poll to set",
}
#: `broker_transport_options` keys refused, with what to do instead.
REFUSED_TRANSPORT_OPTIONS: Mapping[str, str] = {
    "global_keyprefix": "give the key prefix in the broker URL: redis://host:6379/0?prefix=name",
    "master_name": "Redis Sentinel is not supported: give the current master's redis:// URL",
    "sentinel_kwargs": "Redis Sentinel is not supported: give the current master's redis:// URL",
}


def check_accepted(name: str, value: Any) -> Any:
    """The value of an accepted setting, checked; raise ConfigurationError otherwise."""
    return ACCEPTED[name].check(name, value)
