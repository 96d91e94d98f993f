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
from .bounds import (
    check_eta,
    check_expires,
    check_optional_seconds,
    check_queue_name,
    check_seconds,
    check_task_id,
)
from .compression import METHODS, check_method
from .errors import ConfigurationError
from .priorities import AMQP_MAX_PRIORITY
from .ratelimit import parse_rate

MIN_PRIORITY = 0
MAX_PRIORITY = 9


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Everything `@app.task(...)` accepts, with conveyor's defaults.

    `None` means "use the app's setting" for options that have one (queue, acks_late…).

    `rate_limit` holds across every worker sharing the broker; `per_worker_rate_limit` is
    Celery's behaviour (each worker process counts alone). `acks_late=False` runs a call at
    most once; `reject_on_worker_lost=False` records a call whose pool child died as FAILURE
    (WorkerLostError) instead of running it again. `dead_letter_on_failure` keeps the message
    of a call that ended in FAILURE in the dead letters, for `conveyor dlq redrive`.
    `base` is a `conveyor.Task` subclass (Celery's `base=`): the task is built from it, and its
    class attributes named like options (`priority = 9`, `queue = "high"`…) are defaults for
    the options the decorator does not give.
    """

    name: str | None = None
    queue: str | None = None
    priority: int | None = None
    bind: bool = False
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    autoretry_for: tuple[type[BaseException], ...] = ()
    dont_autoretry_for: tuple[type[BaseException], ...] = ()  # never retried automatically
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
    per_worker_rate_limit: str | None = None
    max_deliveries: int | None = None
    dead_letter_on_failure: bool | None = None
    base: type | None = None
    # Celery's names, checked here (see check_retry_kwargs, check_serializer): what an
    # autoretry passes to retry(), the one serializer there is, and the call-time check of
    # arguments against the function's parameters (None: on, as Celery's strict_typing).
    retry_kwargs: Mapping[str, Any] = field(default_factory=dict)
    serializer: str | None = None
    typing: bool | None = None
    compression: str | None = None  # the task's default for apply_async(compression=)
    # Celery's: record STARTED for this task's calls (None: task_track_started), and the
    # errors it is expected to raise (their failures are logged at INFO, without traceback).
    track_started: bool | None = None
    store_errors_even_if_ignored: bool = False  # with ignore_result: still store FAILURE
    throws: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.base is not None and not isinstance(self.base, type):
            raise ConfigurationError(f"base must be a Task subclass, got {self.base!r}")
        check_retry_kwargs(self.retry_kwargs)
        check_serializer("serializer", self.serializer)
        check_compression(self.compression)
        if self.typing is not None and not isinstance(self.typing, bool):
            raise ConfigurationError(f"typing must be True or False, got {self.typing!r}")
        if self.priority is not None:
            check_priority(self.priority)
        if self.queue is not None:
            check_queue_name(self.queue)
        check_expires("expires", self.expires)
        check_seconds("default_retry_delay", self.default_retry_delay, zero=True)
        check_seconds("retry_backoff_max", self.retry_backoff_max)
        if not isinstance(self.retry_backoff, bool):
            check_seconds("retry_backoff", self.retry_backoff)
        check_max_retries(self.max_retries)
        if self.max_deliveries is not None and not _whole(self.max_deliveries, 1):
            raise ConfigurationError(
                f"max_deliveries must be an integer, 1 or more, got {self.max_deliveries!r}"
            )
        if not isinstance(self.autoretry_for, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.autoretry_for
        ):
            raise ConfigurationError("autoretry_for must be a tuple of exception classes")
        if not isinstance(self.throws, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.throws
        ):
            raise ConfigurationError("throws must be a tuple of exception classes")
        if self.track_started is not None and not isinstance(self.track_started, bool):
            raise ConfigurationError(
                f"track_started must be True or False, got {self.track_started!r}"
            )
        if not isinstance(self.dont_autoretry_for, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.dont_autoretry_for
        ):
            raise ConfigurationError("dont_autoretry_for must be a tuple of exception classes")
        check_time_limits(self.time_limit, self.soft_time_limit)
        parse_rate(self.rate_limit, "rate_limit")
        parse_rate(self.per_worker_rate_limit, "per_worker_rate_limit")
        if self.rate_limit is not None and self.per_worker_rate_limit is not None:
            raise ConfigurationError(
                "give rate_limit= (global, across all workers) or per_worker_rate_limit= "
                "(each worker alone), not both"
            )


RETRY_KWARGS = frozenset({"max_retries", "countdown"})


def check_retry_kwargs(value: object) -> None:
    """`retry_kwargs` is a dict of what an autoretry passes to `retry()`: `max_retries` (it
    wins over the task's) and `countdown` (seconds; `retry_backoff` wins over it, as in
    Celery). Other keys of Celery's retry() (eta, args, kwargs, throw…) are refused."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"retry_kwargs must be a dict such as {{'max_retries': 5, 'countdown': 2}}, "
            f"got {value!r}"
        )
    unknown = sorted(set(value) - RETRY_KWARGS)
    if unknown:
        raise ConfigurationError(
            f"retry_kwargs: {', '.join(map(repr, unknown))} not supported; conveyor's autoretry "
            "takes max_retries and countdown (give retry_backoff= for growing delays)"
        )
    if "max_retries" in value:
        check_max_retries(value["max_retries"])
    if "countdown" in value:
        check_seconds("retry_kwargs countdown", value["countdown"], zero=True)


#: Celery's names for deflate in a zlib wrapper (kombu's "zlib" and its content type).
ZLIB_NAMES = frozenset({"zlib", "application/x-gzip"})


def check_compression(value: object, name: str = "compression") -> str | None:
    """The method a message body is compressed with: None, "gzip" or "zstd" (which needs the
    zstandard package); Celery's "zlib" is the same deflate as gzip in another wrapper, and is
    sent as gzip. Others (bzip2, lzma, brotli) are refused."""
    if value in ZLIB_NAMES:
        return "gzip"
    if value is None or value in METHODS:
        return check_method(name, value)
    raise ConfigurationError(
        f"{name}={value!r}: conveyor compresses message bodies with 'gzip' (also given "
        "as 'zlib') or 'zstd'; use one of those"
    )


#: The serializer names meaning JSON, the only one conveyor has.
JSON_NAMES = frozenset({"json", "application/json"})


def check_serializer(name: str, value: object) -> None:
    """None or "json": refuse pickle, yaml, msgpack… saying why."""
    if value is None or value in JSON_NAMES:
        return
    raise ConfigurationError(
        f"{name}={value!r}: conveyor sends and stores calls as JSON only. pickle would let "
        "anyone who can write to the broker run code in your workers, and one format keeps "
        "producers and workers of every version agreeing; pass plain data (str, int, float, "
        "bool, None, list, dict) and rebuild objects inside the task, or drop the option"
    )


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def check_max_retries(value: object) -> int | None:
    """None (retry forever) or an integer, 0 or more; NaN, infinity and fractions (which
    would compare false with every count, retrying for ever) are refused."""
    if value is not None and not _whole(value, 0):
        raise ConfigurationError(
            f"max_retries must be an integer, 0 or more, or None (retry forever), got {value!r}"
        )
    return value  # type: ignore[return-value]


def check_time_limits(hard: float | None, soft: float | None) -> None:
    """Both limits are positive, finite seconds or None; raise ConfigurationError otherwise."""
    check_optional_seconds("time_limit", hard)
    check_optional_seconds("soft_time_limit", soft)


def check_priority(priority: int) -> int:
    """Return `priority` if it is an int from 0 to 255 (RabbitMQ's range), else raise
    ConfigurationError. Where the call goes decides its scale: conveyor's 0–9, or 0 to the
    queue's max priority (`task_queue_max_priority`), checked and mapped when it is routed
    (conveyor.priorities)."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ConfigurationError(f"priority must be an int from 0 to 9, got {priority!r}")
    if not MIN_PRIORITY <= priority <= AMQP_MAX_PRIORITY:
        raise ConfigurationError(
            f"priority must be from 0 to 9 (higher runs first), or up to task_queue_max_priority "
            f"(at most {AMQP_MAX_PRIORITY}) when that is set; got {priority}"
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
    base = kwargs.get("base")
    if isinstance(base, type):
        kwargs = {**_inherited_options(base), **kwargs}
    return TaskOptions(**kwargs)


#: Modules of conveyor's own Task class and its parts (their attributes are not options).
_OWN_TASK_MODULES = frozenset({"conveyor.task", "conveyor.task_attributes"})


def _inherited_options(base: type) -> dict[str, Any]:
    """Option-named class attributes of a user's Task subclass (nearest class first)."""
    found: dict[str, Any] = {}
    for klass in reversed(base.__mro__):
        if klass is object or klass.__module__ in _OWN_TASK_MODULES:
            continue
        for key, value in vars(klass).items():
            if key in TASK_OPTION_NAMES and key not in ("name", "base"):
                found[key] = value
    return found


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What one call may set or override (`apply_async` keywords). Checked when built: a
    countdown is finite and not negative, expires and time limits are positive and finite,
    the queue name and task id are printable and bounded (`conveyor.bounds`)."""

    countdown: float | None = None
    eta: datetime | None = None
    expires: float | datetime | None = None
    priority: int | None = None
    queue: str | None = None
    task_id: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
    soft_time_limit: float | None = None
    # Celery's apply_async options (conveyor.calling maps them): this call's ignore_result,
    # the name it shows under (shadow), its body's compression, and how long the producer may
    # retry an unanswering broker for it (None: the broker_retry_budget setting).
    ignore_result: bool | None = None
    shadow: str | None = None
    compression: str | None = None
    retry_budget: float | None = None

    def __post_init__(self) -> None:
        if self.ignore_result is not None and not isinstance(self.ignore_result, bool):
            raise ConfigurationError(
                f"ignore_result must be True or False, got {self.ignore_result!r}"
            )
        if self.shadow is not None and (not isinstance(self.shadow, str) or not self.shadow):
            raise ConfigurationError(f"shadow must be a non-empty name, got {self.shadow!r}")
        if self.countdown is not None and self.eta is not None:
            raise ConfigurationError("give countdown= or eta=, not both")
        check_optional_seconds("countdown", self.countdown, zero=True)
        check_eta(self.eta)
        check_expires("expires", self.expires)
        check_time_limits(self.time_limit, self.soft_time_limit)
        if self.priority is not None:
            check_priority(self.priority)
        if self.queue is not None:
            check_queue_name(self.queue)
        if self.task_id is not None:
            check_task_id(self.task_id)
