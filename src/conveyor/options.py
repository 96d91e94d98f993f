"""Typed options for tasks and for single calls.

`TaskOptions` holds what `@app.task(...)` accepts; `CallOptions` what one `apply_async` call may
override. Both are frozen: a task's options never change after decoration, so a worker and a
producer that import the same code agree on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._names import did_you_mean
from .errors import ConfigurationError

#: Options Celery users set that conveyor accepts but whose behaviour arrives in a later release.
#: Setting one to anything but its default fails at decoration time instead of doing nothing.
_NOT_BUILT_YET: Mapping[str, str] = {
    "time_limit": "hard time limits",
    "soft_time_limit": "soft time limits",
    "rate_limit": "global rate limits",
}

MIN_PRIORITY = 0
MAX_PRIORITY = 9


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Everything `@app.task(...)` accepts, with conveyor's defaults.

    `None` means "use the app's setting" for options that have one (queue, acks_late…).
    """

    name: str | None = None
    queue: str | None = None
    priority: int | None = None
    bind: bool = False
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    time_limit: float | None = None
    soft_time_limit: float | None = None
    expires: float | datetime | None = None
    acks_late: bool | None = None
    ignore_result: bool | None = None
    reject_on_worker_lost: bool | None = None
    rate_limit: str | None = None
    max_deliveries: int | None = None

    def __post_init__(self) -> None:
        if self.priority is not None:
            check_priority(self.priority)
        if self.max_retries is not None and self.max_retries < 0:
            raise ConfigurationError("max_retries must be >= 0 or None (retry forever)")
        if self.max_deliveries is not None and self.max_deliveries < 1:
            raise ConfigurationError("max_deliveries must be >= 1")
        if not isinstance(self.autoretry_for, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.autoretry_for
        ):
            raise ConfigurationError("autoretry_for must be a tuple of exception classes")
        _refuse_unbuilt(self)


def _refuse_unbuilt(options: TaskOptions) -> None:
    for opt, feature in _NOT_BUILT_YET.items():
        if getattr(options, opt) is not None:
            raise NotImplementedError(
                f"task option {opt}= is not supported yet ({feature} are not built); remove it "
                "rather than rely on it being enforced"
            )
    if options.acks_late is False:
        raise NotImplementedError(
            "acks_late=False (at-most-once delivery) is not supported yet; conveyor acknowledges "
            "after the outcome is stored (at-least-once)"
        )
    if options.reject_on_worker_lost is False:
        raise NotImplementedError(
            "reject_on_worker_lost=False is not supported yet: a call whose worker dies is "
            "always redelivered when its lease expires"
        )


def check_priority(priority: int) -> int:
    """Return `priority` if it is an int in 0..9, else raise ConfigurationError."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigurationError(f"priority must be an int from 0 to 9, got {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ConfigurationError(
            f"priority must be from 0 to 9 (higher runs first), got {priority}"
        )
    return priority


TASK_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(TaskOptions))


def task_options(kwargs: Mapping[str, Any]) -> TaskOptions:
    """Build TaskOptions from decorator keywords; an unknown keyword is a TypeError naming the
    closest valid option."""
    for key in kwargs:
        if key not in TASK_OPTION_NAMES:
            raise TypeError(
                f"unknown task option {key!r}{did_you_mean(key, TASK_OPTION_NAMES)}; valid "
                f"options: {', '.join(sorted(TASK_OPTION_NAMES))}"
            )
    return TaskOptions(**kwargs)


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What one call may set or override (`apply_async` keywords)."""

    countdown: float | None = None
    eta: datetime | None = None
    expires: float | datetime | None = None
    priority: int | None = None
    queue: str | None = None
    task_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.countdown is not None and self.eta is not None:
            raise ConfigurationError("give countdown= or eta=, not both")
        if self.priority is not None:
            check_priority(self.priority)
