"""Time as an injectable dependency.

Every place that compares times (due messages, lease expiry, result expiry, retry delays) asks a
`Clock` rather than calling `time.time()` itself, so tests can drive leases and delays with a
`FakeClock` instead of sleeping. A broker takes exactly one clock: all of its comparisons use it,
which is what "one clock" means for an embedded backend shared by processes on one machine.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch, plus a way to wait."""

    def now(self) -> float:
        """Current time in seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`. A fake clock advances instead of blocking."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; `sleep` advances it at once.

    Thread-safe, so a worker's helper threads may read it while a test advances it.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


SYSTEM_CLOCK = SystemClock()
