"""Rate limits: Celery's `"10/m"` spelling, and the per-worker limiter.

A rate becomes an **interval** between start slots ("10/m" → one start every 6 s). The global
limiter lives in the broker (`Broker.throttle`), so it holds across every worker sharing it;
`LocalThrottle` is the same slot arithmetic in one worker's memory, for `per_worker_rate_limit`
(Celery's behaviour). Both hand out slots at most one interval apart, with no burst, which is
how Celery's token bucket of capacity 1 behaves too.
"""

from __future__ import annotations

import re
import threading

from .errors import ConfigurationError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*$")


def parse_rate(value: str | float | None, name: str = "rate_limit") -> float | None:
    """The interval in seconds between starts for a rate such as "10/m", "30/s", "100/h" or
    a bare number (per second). None or 0 means no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigurationError(f'{name} must look like "10/m", "30/s" or "100/h", got {value!r}')
    match = _RATE.match(str(value))
    if match is None:
        raise ConfigurationError(
            f'{name}={value!r} is not a rate: write a count per unit, e.g. "10/m", "30/s", "100/h"'
        )
    count = float(match.group(1))
    if count == 0:
        return None
    return _UNITS[match.group(2) or "s"] / count


class LocalThrottle:
    """Start slots per key, kept in this process only (per-worker limits). Thread-safe."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str, interval: float, now: float) -> float:
        """Take the next slot of `key`; returns seconds from `now` until it."""
        with self._lock:
            slot = max(self._next.get(key, now), now)
            self._next[key] = slot + interval
            return slot - now
