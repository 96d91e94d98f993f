"""What the worker hands a pool, and what a pool hands back."""

from __future__ import annotations

from dataclasses import dataclass

from ..message import Message
from ..request import Request
from .executor import RunResult


@dataclass(frozen=True, slots=True)
class Job:
    """One call to run: its message, request context and time limits (seconds, resolved from
    the call, the task and the settings). Picklable (crosses to children)."""

    key: int
    message: Message
    request: Request
    time_limit: float | None = None
    soft_time_limit: float | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished job: its RunResult, or `lost` with a reason when its run was cut off (a
    process-pool child died, or the job was terminated). The worker decides what a lost run
    means for the message (see `Worker._settle`)."""

    key: int
    result: RunResult | None = None
    lost: str | None = None
