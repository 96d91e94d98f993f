"""Celery's exchanges and routing keys, mapped onto conveyor's queues.

conveyor addresses a queue by its name alone. Celery (over AMQP) publishes a call to an exchange
with a routing key, and the call lands in the queues bound to that exchange by a matching binding
key. Celery configurations that route by routing key (`task_routes` entries such as
`{"exchange": "media", "routing_key": "media.image"}` with no `queue`) are mapped here:

* each queue of `task_queues` is bound as Celery binds it: to its own exchange, else to
  `task_default_exchange` (itself `task_default_queue` when unset); by its own routing key, else
  by its name; with its exchange's type, else `task_default_exchange_type`;
* a routing key reaches the declared queues bound by an equal key (`direct`), by an AMQP topic
  pattern it matches (`topic`: words split on `.`, `*` one word, `#` zero or more), or every
  queue of the exchange (`fanout`). When an exchange is given, only queues bound to it count;
* exactly one queue reached: the call goes there. Several: refused, since conveyor sends a call to
  one queue (Celery would run it once per queue). None, or no `task_queues`: the routing key names
  the queue, as in Celery's automatic topology, where each queue is bound by its own name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .errors import ConfigurationError


class ExchangeType(str, Enum):
    DIRECT = "direct"
    TOPIC = "topic"
    FANOUT = "fanout"
    HEADERS = "headers"


EXCHANGE_TYPES = tuple(t.value for t in ExchangeType)


def check_exchange_type(name: str, value: object) -> str:
    """An AMQP exchange type Celery accepts; `headers` is refused (it routes by message headers,
    which conveyor does not match)."""
    if value not in EXCHANGE_TYPES:
        raise ConfigurationError(f"{name}={value!r}: use one of {', '.join(EXCHANGE_TYPES)}")
    if value == ExchangeType.HEADERS.value:
        raise ConfigurationError(
            f"{name}='headers' is refused: conveyor routes by queue name and does not match "
            "message headers; route with task_routes {'pattern': {'queue': ...}} instead"
        )
    return str(value)


@dataclass(frozen=True, slots=True)
class Binding:
    """One declared queue as Celery binds it: exchange name, exchange type, binding key."""

    queue: str
    exchange: str
    exchange_type: str
    key: str

    def reaches(self, routing_key: str) -> bool:
        if self.exchange_type == ExchangeType.FANOUT.value:
            return True
        if self.exchange_type == ExchangeType.TOPIC.value:
            return topic_matches(self.key, routing_key)
        return self.key == routing_key


def topic_matches(pattern: str, key: str) -> bool:
    """Whether `key` matches the AMQP topic `pattern` (`*` one word, `#` zero or more)."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])


def queue_for_key(
    bindings: Iterable[Binding], routing_key: str, exchange: str | None, where: str
) -> str:
    """The queue a call published with `routing_key` (to `exchange`, if given) lands in; see
    the module docstring. Raises ConfigurationError when several declared queues would get it."""
    reached = sorted(
        {
            b.queue
            for b in bindings
            if (exchange is None or b.exchange == exchange) and b.reaches(routing_key)
        }
    )
    if len(reached) > 1:
        raise ConfigurationError(
            f"{where}: routing key {routing_key!r} reaches queues {', '.join(reached)}; Celery "
            "would run the call once per queue, conveyor sends a call to one queue: give "
            "'queue' instead of the routing key"
        )
    return reached[0] if reached else routing_key
