"""Queue declarations: `task_queues` entries as Celery and kombu write them.

`Queue` and `Exchange` stand in for kombu's. conveyor addresses a queue by its name; the rest of
a declaration matters only where Celery gives it a meaning conveyor keeps: the binding
(exchange, routing key; conveyor.bindings) and the priority scale (`max_priority`, or RabbitMQ's
`x-max-priority` queue argument; conveyor.priorities).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .bindings import Binding
from .bounds import check_queue_name
from .errors import ConfigurationError
from .priorities import check_max_priority

if TYPE_CHECKING:
    from .config import Settings


@dataclass(frozen=True, slots=True)
class Exchange:
    """Accepted so `Queue("ai", Exchange("ai"), routing_key="ai")` from kombu keeps working.
    conveyor has no exchanges: a queue is addressed by its name, and an exchange's name and type
    only bind declared queues for routes that give a routing key (conveyor.bindings). kombu's
    declaration flags (`durable`, `auto_delete`, `delivery_mode`, `no_declare`, `passive`)
    change nothing: every conveyor message is stored durably."""

    name: str = ""
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    delivery_mode: int | str | None = None
    no_declare: bool = False
    passive: bool = False


@dataclass(frozen=True, slots=True)
class Queue:
    """A declared queue (an entry of `task_queues`), as `kombu.Queue` declares one. conveyor
    addresses it by `name`; `exchange` and `routing_key` are its binding, used only for routes
    that give a routing key instead of a queue (conveyor.bindings); `max_priority` is the scale
    of the priorities sent to it (conveyor.priorities), also read from RabbitMQ's
    `queue_arguments={"x-max-priority": N}`. `durable`, `auto_delete` and the queue type
    (`x-queue-type`) change nothing: every conveyor queue is durable and lives while it holds
    messages. Other `queue_arguments` are refused, naming what to use instead."""

    name: str
    exchange: Exchange | str | None = None
    routing_key: str | None = None
    durable: bool = True
    auto_delete: bool = False
    max_priority: int | None = None
    queue_arguments: Mapping[str, Any] | None = field(default=None, hash=False)
    no_declare: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"Queue name must be a non-empty string, got {self.name!r}")
        from_args = _max_priority_argument(self.name, self.queue_arguments)
        if self.max_priority is None and from_args is not None:
            object.__setattr__(self, "max_priority", from_args)
        check_max_priority(f"Queue({self.name!r}) max_priority", self.max_priority)

    def binding(self, default_exchange: str, default_type: str) -> Binding:
        """How Celery binds this queue: its exchange (else the default one), its routing key
        (else its name)."""
        exchange = self.exchange
        name = exchange.name if isinstance(exchange, Exchange) else exchange
        kind = exchange.type if isinstance(exchange, Exchange) else default_type
        return Binding(self.name, name or default_exchange, kind, self.routing_key or self.name)


#: RabbitMQ queue arguments that change nothing in conveyor.
_HARMLESS_ARGUMENTS = frozenset({"x-max-priority", "x-queue-type"})


def _max_priority_argument(name: str, arguments: Mapping[str, Any] | None) -> int | None:
    """`x-max-priority` of a queue's RabbitMQ arguments; any argument conveyor cannot honour
    (`x-message-ttl`, `x-dead-letter-exchange`, …) is refused."""
    for key in arguments or {}:
        if key not in _HARMLESS_ARGUMENTS:
            raise ConfigurationError(
                f"Queue({name!r}) queue_arguments[{key!r}] is refused: conveyor queues take only "
                "x-max-priority (and x-queue-type, which changes nothing); use expires= on "
                "calls for a message TTL, task_dead_letter_on_failure for dead letters"
            )
    value = (arguments or {}).get("x-max-priority")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def exchange_name(value: Any, where: str) -> str | None:
    """An exchange given as a name, a conveyor Exchange or a kombu Exchange (its `name`)."""
    name = getattr(value, "name", value)
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise ConfigurationError(
            f"{where}: an exchange is a name or Exchange('name'), got {value!r}"
        )
    return name


def parse_queues(value: Any) -> tuple[Queue, ...] | None:
    """Normalise `task_queues`: names, Queue objects (or kombu.Queue objects, read by their
    `name`, `exchange`, `routing_key` and `max_priority`), or Celery's dict from name to
    `{"exchange": …, "exchange_type": …, "routing_key": …}`. None means "not declared": any
    queue may be used."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        value = [_queue_from_dict(name, options) for name, options in value.items()]
    if not isinstance(value, Iterable):
        raise ConfigurationError(f"task_queues must be a list of queues, got {value!r}")
    out: list[Queue] = []
    for entry in value:
        if isinstance(entry, Queue):
            out.append(entry)
        elif isinstance(entry, str):
            out.append(Queue(entry))
        elif isinstance(getattr(entry, "name", None), str):
            out.append(_queue_from_kombu(entry))
        else:
            raise ConfigurationError(
                f"task_queues entry {entry!r}: expected a queue name or Queue('name')"
            )
        check_queue_name(out[-1].name, "task_queues")
    return tuple(out)


def _queue_from_kombu(entry: Any) -> Queue:
    if type(entry).__name__ == "Broadcast":
        raise ConfigurationError(
            f"task_queues entry Broadcast({entry.name!r}) is refused: Celery runs a broadcast "
            "call on every worker, conveyor runs each call once, on one worker"
        )
    exchange = getattr(entry, "exchange", None)
    name = getattr(exchange, "name", exchange)
    kind = getattr(exchange, "type", None) or "direct"
    return Queue(
        entry.name,
        Exchange(name, kind) if isinstance(name, str) and name else None,
        getattr(entry, "routing_key", None) or None,
        max_priority=getattr(entry, "max_priority", None),
        queue_arguments=getattr(entry, "queue_arguments", None) or None,
    )


def _queue_from_dict(name: Any, options: Any) -> Queue:
    """One entry of Celery's old dict form of task_queues."""
    where = f"task_queues[{name!r}]"
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"{where}: expected a dict of queue options, got {options!r}")
    exchange = exchange_name(options.get("exchange"), where)
    kind = options.get("exchange_type", "direct")
    key = options.get("routing_key", options.get("binding_key"))
    return Queue(
        name,
        Exchange(exchange, kind) if exchange else None,
        key,
        max_priority=options.get("max_priority"),
    )


def default_consumed(settings: Settings) -> tuple[str, ...]:
    """The queues a worker started without `-Q` consumes, as in Celery: every queue
    `task_queues` declares (in that order), else `task_default_queue`."""
    declared = settings.task_queues
    return tuple(q.name for q in declared) if declared else (settings.task_default_queue,)
