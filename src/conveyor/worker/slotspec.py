"""Slot group specs: which queues one group of slots consumes, how many slots, which pool, and
in what order its queues are drained.

Syntax (one `-Q` per group): `QUEUE[,QUEUE…][:CONCURRENCY[:POOL]]`, e.g.
`-Q high,default:3 -Q low:1`. With `--queue-order weighted` a queue may carry a weight,
`-Q high=3,default=1:4`.

Orders:
* strict (default): every reservation tries the group's queues in the order written, so
  `high` is drained before `default` is touched.
* weighted: each reservation starts at the next queue of a smooth weighted round-robin
  sequence (high, high, default, high… for 3:1) and falls through to the others when that queue
  is empty, so under a backlog on every queue the slots go to the queues in proportion to
  their weights and no queue waits behind another for ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ..config import POOL_NAMES
from ..errors import ConfigurationError

_EXPECTED = (
    "expected QUEUE[,QUEUE…][:CONCURRENCY[:POOL]], e.g. -Q high,default:3 -Q low:1 "
    "(with --queue-order weighted, queues may carry weights: -Q high=3,default=1:4)"
)
_QUEUE = re.compile(r"^(?P<name>[^=,:\s]+)(?:=(?P<weight>\d+))?$")


class QueueOrder(str, Enum):
    STRICT = "strict"
    WEIGHTED = "weighted"


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """One slot group: its queues (with weights, all 1 unless weighted), slot count and pool."""

    queues: tuple[str, ...]
    concurrency: int = 1
    pool: str = "solo"
    order: QueueOrder = QueueOrder.STRICT
    weights: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a slot group needs at least one queue")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.pool == "solo" and self.concurrency != 1:
            raise ConfigurationError(
                f"the solo pool runs one task at a time; group {self.describe()} asks for "
                f"{self.concurrency} (use -P threads or process for more)"
            )
        if self.weights and len(self.weights) != len(self.queues):
            raise ConfigurationError("give one weight per queue")

    def describe(self) -> str:
        """The spec written back in `-Q` syntax."""
        if self.order is QueueOrder.WEIGHTED and len(self.queues) > 1:
            names = ",".join(f"{q}={w}" for q, w in zip(self.queues, self.weights, strict=True))
        else:
            names = ",".join(self.queues)
        return f"{names}:{self.concurrency}:{self.pool}"


def parse_slot_spec(
    text: str, concurrency: int | None, pool: str, order: QueueOrder = QueueOrder.STRICT
) -> SlotSpec:
    """Parse one `-Q` value. `concurrency` and `pool` apply when the spec leaves them out
    (`concurrency` None: the spec must give it)."""
    head, *tail = text.strip().split(":")
    if len(tail) > 2 or not head:
        raise _malformed(text, "too many ':' parts" if head else "no queue named")
    queues, weights = _queues(text, head, order)
    count = concurrency
    if tail and tail[0]:
        if not tail[0].isdigit() or int(tail[0]) < 1:
            raise _malformed(text, f"concurrency {tail[0]!r} is not a whole number ≥ 1")
        count = int(tail[0])
    if count is None:
        raise _malformed(text, "no concurrency given")
    chosen_pool = tail[1] if len(tail) == 2 else pool
    if chosen_pool not in POOL_NAMES:
        raise _malformed(text, f"unknown pool {chosen_pool!r} (use process, threads or solo)")
    return SlotSpec(queues, count, POOL_NAMES[chosen_pool], order, weights)


def _queues(text: str, head: str, order: QueueOrder) -> tuple[tuple[str, ...], tuple[int, ...]]:
    names, weights = [], []
    for part in head.split(","):
        match = _QUEUE.match(part.strip())
        if match is None:
            raise _malformed(text, f"{part.strip()!r} is not a queue name")
        weight = match["weight"]
        if weight is not None and order is not QueueOrder.WEIGHTED:
            raise _malformed(text, "queue weights need --queue-order weighted")
        if weight is not None and int(weight) < 1:
            raise _malformed(text, f"weight of {match['name']!r} must be ≥ 1")
        if match["name"] in names:
            raise _malformed(text, f"queue {match['name']!r} is listed twice")
        names.append(match["name"])
        weights.append(int(weight or 1))
    return tuple(names), tuple(weights) if order is QueueOrder.WEIGHTED else ()


def _malformed(text: str, why: str) -> ConfigurationError:
    return ConfigurationError(f"-Q {text!r}: {why}; {_EXPECTED}")


def check_disjoint(specs: tuple[SlotSpec, ...]) -> None:
    """A queue consumed by two groups would let one group's slots take the other's work."""
    seen: dict[str, str] = {}
    for spec in specs:
        for queue in spec.queues:
            if queue in seen:
                raise ConfigurationError(
                    f"queue {queue!r} is in two slot groups ({seen[queue]} and "
                    f"{spec.describe()}); give each queue to one group"
                )
            seen[queue] = spec.describe()


class Rotation:
    """The queue order for each reservation of a slot group (see the module docstring).
    Not thread-safe: one group's loop owns it."""

    def __init__(self, spec: SlotSpec) -> None:
        self._queues = spec.queues
        self._weights = spec.weights or tuple(1 for _ in spec.queues)
        self._strict = spec.order is QueueOrder.STRICT
        self._current = [0] * len(self._queues)

    def next(self) -> tuple[str, ...]:
        """The queues in the order the next reservation should try them."""
        if self._strict or len(self._queues) == 1:
            return self._queues
        total = sum(self._weights)
        for i, weight in enumerate(self._weights):
            self._current[i] += weight
        best = max(range(len(self._queues)), key=lambda i: self._current[i])
        self._current[best] -= total
        return (self._queues[best], *self._queues[:best], *self._queues[best + 1 :])
