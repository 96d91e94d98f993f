"""Bounds on the values a caller controls: seconds, queue names and task ids.

Each check returns the value when it is acceptable and raises ConfigurationError naming the
option otherwise, so a bad value fails at the call site (`apply_async`, `@app.task`,
`beat_schedule`, settings) instead of being stored and misread later: a NaN countdown that
compares false with everything, an infinite expiry, a task id with a newline that breaks a log
line or a key, a queue name no worker can be told to consume.

Seconds are at most MAX_SECONDS (ten 365-day years): far beyond any real countdown, expiry,
retry delay or time limit, and far below what the clocks and timers that use them can hold
(`threading.TIMEOUT_MAX` is about 292 years; a datetime ends in year 9999). `time_limit=1e300`
would otherwise make every call's timer fail, and `countdown=10**400` overflow a float.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .errors import ConfigurationError

MAX_QUEUE_NAME = 255
MAX_TASK_ID = 255
MAX_SECONDS = 10 * 365 * 86400  # ten years: see the module docstring
MAX_SECONDS_TEXT = f"{MAX_SECONDS:,} (ten years)"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_seconds(value: Any) -> float:
    """`value` as a float; NaN when it is not a number, infinity when it is too large."""
    if not _is_number(value):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an int beyond any float
        return math.inf


def shown(value: Any) -> str:
    """`value` for an error message: an int too long to print whole is described instead."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """A finite number of seconds, positive (or also 0 when `zero`), at most MAX_SECONDS."""
    number = _as_seconds(value)
    if not 0 <= number <= MAX_SECONDS or (number == 0 and not zero):  # NaN fails both
        want = (
            "a finite number of seconds from 0" if zero else "a positive, finite number of seconds"
        )
        raise ConfigurationError(
            f"{name} must be {want} up to {MAX_SECONDS_TEXT}, got {shown(value)}"
        )
    return number


def check_optional_seconds(name: str, value: Any, *, zero: bool = False) -> float | None:
    """None, or what `check_seconds` accepts."""
    return None if value is None else check_seconds(name, value, zero=zero)


def check_expires(name: str, value: Any) -> float | datetime | None:
    """None, a datetime, or a positive, finite number of seconds from now."""
    if value is None or isinstance(value, datetime):
        return value
    if not _is_number(value):
        raise ConfigurationError(
            f"{name} must be seconds from now or a datetime, got {shown(value)}"
        )
    return check_seconds(name, value)


def check_eta(value: Any) -> datetime | None:
    """None or a datetime (a time in the past means "now", as in Celery)."""
    if value is None or isinstance(value, datetime):
        return value
    raise ConfigurationError(
        f"eta must be a datetime (use countdown= for seconds from now), got {value!r}"
    )


def _printable(kind: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > limit:
        raise ConfigurationError(
            f"{kind} is {len(value)} characters long; the limit is {limit}: {value[:40]!r}…"
        )
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise ConfigurationError(
            f"{kind} {value!r} holds the unprintable character {bad!r}: use printable "
            "characters only (no control characters such as newlines or tabs)"
        )
    return value


def check_queue_name(value: Any, where: str = "queue") -> str:
    """A queue name: non-empty, printable, without ',' (which separates queues in `-Q`), at
    most MAX_QUEUE_NAME characters."""
    name = _printable(f"{where}: a queue name", value, MAX_QUEUE_NAME)
    if "," in name:
        raise ConfigurationError(
            f"{where}: queue name {name!r} holds ',', which separates queues in -Q"
        )
    return name


def check_task_id(value: Any) -> str:
    """A caller-given task id: non-empty, printable, at most MAX_TASK_ID characters."""
    return _printable("task_id", value, MAX_TASK_ID)
