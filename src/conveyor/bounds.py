"""Bounds on the values a caller controls: seconds, queue names and task ids.

Each check returns the value when it is acceptable and raises ConfigurationError naming the
option otherwise, so a bad value fails at the call site (`apply_async`, `@app.task`,
`beat_schedule`, settings) instead of being stored and misread later: a NaN countdown that
compares false with everything, an infinite expiry, a task id with a newline that breaks a log
line or a key, a queue name no worker can be told to consume.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .errors import ConfigurationError

MAX_QUEUE_NAME = 255
MAX_TASK_ID = 255


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """A finite number of seconds, positive (or also 0 when `zero`)."""
    if not _is_number(value) or not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        want = "a finite number of seconds, 0 or more" if zero else "a positive, finite number"
        unit = "" if zero else " of seconds"
        raise ConfigurationError(f"{name} must be {want}{unit}, got {value!r}")
    return float(value)


def check_optional_seconds(name: str, value: Any, *, zero: bool = False) -> float | None:
    """None, or what `check_seconds` accepts."""
    return None if value is None else check_seconds(name, value, zero=zero)


def check_expires(name: str, value: Any) -> float | datetime | None:
    """None, a datetime, or a positive, finite number of seconds from now."""
    if value is None or isinstance(value, datetime):
        return value
    if not _is_number(value):
        raise ConfigurationError(f"{name} must be seconds from now or a datetime, got {value!r}")
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
