"""What the worker hands a pool, and what a pool hands back."""

from __future__ import annotations

from dataclasses import dataclass

from ..message import Message
from ..request import Request
from .executor import RunResult


@dataclass(frozen=True, slots=True)
class Job:
    """One call to run: its message and request context. Picklable (crosses to children)."""

    key: int
    message: Message
    request: Request


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished job: its RunResult, or `lost` with a reason when the pool lost the job
    (a process-pool child died). A lost job is not settled: its lease runs out and the broker
    redelivers it, counting a lost delivery toward `max_deliveries`."""

    key: int
    result: RunResult | None = None
    lost: str | None = None
