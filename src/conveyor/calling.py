"""Celery's `apply_async` keywords that conveyor maps onto its own call options.

- `exchange=` / `routing_key=`: conveyor has queues, not AMQP exchanges. In Celery's default
  topology every queue is bound to a direct exchange of its own name with its name as the
  routing key, so `routing_key` names a queue (`queue_for`); a queue declared in `task_queues`
  with that `routing_key` is picked first.
- `retry=` / `retry_policy=`: how long the producer keeps trying a broker that does not answer
  (`publish_budget`), in seconds, instead of `broker_retry_budget`.
- `serializer=`: JSON only (options.check_serializer says why); `compression=`: "gzip" or
  "zstd"; Celery's "zlib" (the same deflate) is sent as gzip; `bzip2`, `lzma` and `brotli`
  are refused, naming those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .compression import METHODS, check_method
from .errors import ConfigurationError
from .routing import Exchange

if TYPE_CHECKING:
    from .config import Settings

#: Celery's task_publish_retry_policy keys, and its defaults.
RETRY_POLICY_DEFAULTS: Mapping[str, float | None] = {
    "max_retries": 3,
    "interval_start": 0.0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
_POLICY_KEYS = frozenset({*RETRY_POLICY_DEFAULTS, "timeout", "retry_errors"})


def queue_for(
    settings: Settings, queue: str | None, exchange: Any, routing_key: str | None
) -> str | None:
    """The queue a call given Celery's `exchange=` / `routing_key=` goes to, or None for the
    usual routing. `queue=` wins over both. A routing key picks the declared queue bound with
    it, else the queue of that name. An exchange alone picks the queue of its name; the default
    exchange (named like `task_default_queue`, or AMQP's "") leaves routing as it is."""
    if queue is not None:
        return queue
    name = exchange.name if isinstance(exchange, Exchange) else exchange
    if name is not None and not isinstance(name, str):
        raise ConfigurationError(f"exchange must be a name (str), got {exchange!r}")
    if routing_key is not None:
        if not isinstance(routing_key, str) or not routing_key:
            raise ConfigurationError(f"routing_key must be a queue name, got {routing_key!r}")
        for declared in settings.task_queues or ():
            if declared.routing_key == routing_key and _bound_to(declared.exchange, name):
                return declared.name
        return routing_key
    if name in (None, "", settings.task_default_queue):
        return None
    return name


def _bound_to(exchange: Exchange | str | None, name: str | None) -> bool:
    if name is None or exchange is None:
        return True
    return (exchange.name if isinstance(exchange, Exchange) else exchange) == name


def publish_budget(retry: bool | None, retry_policy: Mapping[str, Any] | None) -> float | None:
    """Seconds the producer may keep retrying an unanswering broker for this call: None (the
    `broker_retry_budget` setting) when neither is given, 0 for `retry=False`, and for a
    `retry_policy` its `timeout` when given, else the sum of its waits — interval_start, then
    growing by interval_step up to interval_max, max_retries times (None: for ever).
    Celery's `retry_errors` may only be None (its default): conveyor retries exactly the
    errors that mean the server could not take the call now."""
    if retry is not None and not isinstance(retry, bool):
        raise ConfigurationError(f"retry must be True or False, got {retry!r}")
    if retry is False:
        return 0.0
    if retry_policy is None:
        return None
    if not isinstance(retry_policy, Mapping):
        raise ConfigurationError(
            "retry_policy must be a dict such as {'max_retries': 3, 'interval_start': 0, "
            f"'interval_step': 0.2, 'interval_max': 0.2}}, got {retry_policy!r}"
        )
    unknown = sorted(set(retry_policy) - _POLICY_KEYS)
    if unknown:
        raise ConfigurationError(
            f"retry_policy: unknown key(s) {', '.join(map(repr, unknown))}; Celery's keys are "
            f"{', '.join(sorted(_POLICY_KEYS))}"
        )
    if retry_policy.get("retry_errors") is not None:
        raise ConfigurationError(
            "retry_policy: retry_errors is not supported; conveyor retries the errors that "
            "mean the broker could not take the call now (lost connection, server restarting, "
            "out of memory) and raises the others at once"
        )
    policy = {**RETRY_POLICY_DEFAULTS, **retry_policy}
    if policy.get("timeout") is not None:
        return _seconds("timeout", policy["timeout"])
    return _total_wait(policy)


def _total_wait(policy: Mapping[str, Any]) -> float:
    tries = policy["max_retries"]
    if tries is None:
        return math.inf
    if isinstance(tries, bool) or not isinstance(tries, int) or tries < 0:
        raise ConfigurationError(
            f"retry_policy max_retries must be an integer, 0 or more, or None, got {tries!r}"
        )
    start = _seconds("interval_start", policy["interval_start"])
    step = _seconds("interval_step", policy["interval_step"])
    most = _seconds("interval_max", policy["interval_max"])
    return sum(min(start + step * i, most) for i in range(tries))


def _seconds(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(
            f"retry_policy {key} must be a finite number of seconds, 0 or more, got {value!r}"
        )
    return float(value)


def check_compression(value: object) -> str | None:
    """None, "gzip" or "zstd" (which needs the zstandard package); Celery's "zlib" is the same
    deflate as gzip in another wrapper, and is sent as gzip."""
    if value in ZLIB_NAMES:
        return "gzip"
    if value is None or value in METHODS:
        return check_method("compression", value)
    raise ConfigurationError(
        f"compression={value!r}: conveyor compresses message bodies with 'gzip' (also given "
        "as 'zlib') or 'zstd'; use one of those"
    )


#: Celery's names for deflate in a zlib wrapper (kombu's "zlib" and its content type).
ZLIB_NAMES = frozenset({"zlib", "application/x-gzip"})
