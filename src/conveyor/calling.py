"""Celery's `apply_async` keywords that conveyor maps onto its own call options.

- `exchange=` / `routing_key=`: conveyor has queues, not AMQP exchanges. In Celery's default
  topology every queue is bound to a direct exchange of its own name with its name as the
  routing key, so `routing_key` names a queue (`queue_for`); a queue declared in `task_queues`
  with that `routing_key` is picked first.
- `retry=` / `retry_policy=`: how long the producer keeps trying a broker that does not answer
  (`publish_budget`), in seconds, instead of `broker_retry_budget`.
- `serializer=` and `compression=` are checked in conveyor.options (`check_serializer`,
  `check_compression`), as the task options of the same names are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._names import did_you_mean
from .errors import ConfigurationError
from .options import check_compression, check_serializer
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
    it, else `task_default_queue` for `task_default_routing_key` (when that setting exists),
    else the queue of that name. An exchange alone picks the queue of its name; the default
    exchange (`task_default_exchange`, a name like `task_default_queue`, or AMQP's "") leaves
    routing as it is."""
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
        if routing_key == getattr(settings, "task_default_routing_key", None):
            return settings.task_default_queue
        return routing_key
    default_exchange = getattr(settings, "task_default_exchange", None)
    if name in (None, "", settings.task_default_queue, default_exchange):
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


#: Celery (kombu) publishing options conveyor has no use for, and why each is refused.
_REFUSED: Mapping[str, str] = {
    "producer": "conveyor has no producer pools: the app's broker sends every call; drop it",
    "publisher": "conveyor has no producer pools: the app's broker sends every call; drop it",
    "connection": "conveyor has no connection argument: the app's broker sends every call",
    "add_to_parent": "conveyor does not track a call's children; drop it",
    "mandatory": "an AMQP flag: conveyor's queues always exist once named",
    "immediate": "an AMQP flag that RabbitMQ no longer supports",
    "exchange_type": "conveyor has no exchanges (see routing_key)",
    "declare": "conveyor has no entities to declare: queues exist once named",
    "content_type": "calls are JSON only",
    "content_encoding": "calls are UTF-8 JSON only",
    "reply_to": "results go to the result store, not to a reply queue",
    "expiration": "an AMQP message TTL: give expires= (seconds or a datetime) instead",
}
#: Options kept for Celery code that are harmless here, with the values that are.
_PERSISTENT = (2, "persistent")


def check_other_options(settings: Settings, options: Mapping[str, Any]) -> None:
    """Refuse, saying why, the apply_async keywords conveyor does not take. Accepted as
    harmless: `delivery_mode` 2 / "persistent" (conveyor's brokers always keep messages), and
    `argsrepr` / `kwargsrepr` while `result_extended` is off (conveyor's logs and events never
    show a call's arguments, which is what they are for; with result_extended the arguments
    are stored as given, so they are refused)."""
    for key, value in options.items():
        if key == "delivery_mode":
            if value not in _PERSISTENT:
                raise ConfigurationError(
                    f"delivery_mode={value!r}: conveyor's brokers always keep messages "
                    "(persistent); transient messages are not supported — drop the option"
                )
        elif key in ("argsrepr", "kwargsrepr"):
            if settings.result_extended:
                raise ConfigurationError(
                    f"{key}= hides arguments from logs, but with result_extended=True conveyor "
                    "stores the arguments as given; turn result_extended off or drop the "
                    "sensitive argument"
                )
        elif key in _REFUSED:
            raise ConfigurationError(f"apply_async({key}=...) is not supported: {_REFUSED[key]}")
        else:
            raise TypeError(
                f"apply_async() got an unexpected keyword argument {key!r}"
                f"{did_you_mean(key, _KNOWN)}"
            )


_KNOWN = frozenset(
    {
        "countdown",
        "eta",
        "expires",
        "priority",
        "queue",
        "task_id",
        "headers",
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "serializer",
        "compression",
        "retry",
        "retry_policy",
        "exchange",
        "routing_key",
        "shadow",
        "delivery_mode",
        "argsrepr",
        "kwargsrepr",
        "link",  # canvas: taken by apply_async / send_task themselves
        "link_error",
    }
)


def mapped(settings: Settings, queue: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """The CallOptions fields (`queue`, `ignore_result`, `shadow`, `compression`,
    `retry_budget`) for Celery's apply_async keywords in `options` (exchange, routing_key,
    serializer, compression, retry, retry_policy, shadow, ignore_result; the rest are checked
    by `check_other_options`). Shared by `Task.apply_async` and `app.send_task`."""
    given = dict(options)
    exchange, routing_key = given.pop("exchange", None), given.pop("routing_key", None)
    serializer, compression = given.pop("serializer", None), given.pop("compression", None)
    retry, retry_policy = given.pop("retry", None), given.pop("retry_policy", None)
    shadow, ignore_result = given.pop("shadow", None), given.pop("ignore_result", None)
    check_other_options(settings, given)
    check_serializer("serializer", serializer)
    return {
        "queue": queue_for(settings, queue, exchange, routing_key),
        "ignore_result": ignore_result,
        "shadow": shadow or None,  # empty: none, as in Celery
        "compression": check_compression(compression),  # None: the task's, the setting's
        "retry_budget": publish_budget(retry, retry_policy),
    }
