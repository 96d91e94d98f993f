"""Riding out lost connections to a broker or result-store server, passing server states, and a
full SQLite disk.

A `Guard` runs each call of a backend and retries it, with exponential backoff, when it fails
with one of the backend's transient errors (connection refused or reset, server restarting;
a server that takes no writes for now: Redis at `maxmemory` under `noeviction`, a read-only
replica or standby during a failover, a PostgreSQL serialization failure or deadlock; for
SQLite, a disk that is full or failing, the write rolled back; `_redis.transient_errors`,
`_postgres.transient_errors`). Every backend operation is safe to repeat: enqueue is
idempotent by id, outcomes and settling calls are fenced by token, forgets and chord joins
are idempotent, and a reservation whose reply was lost simply expires and is delivered again.
A server that refuses a call for its state refuses it before writing anything, so such a
retry repeats nothing at all.

Contract:
* Producers (the default) retry for at most `budget` seconds, then get `BackendUnavailable`
  naming the server (never its credentials): an error, never a silent drop.
* A worker makes its guards patient (`budget=None`): calls wait for the server for as long as
  it takes, or until the worker stops (`patient`), so a worker resumes consuming by itself once
  the server is back. While a guard is failing, `down` says since when and why, which the
  worker reports as "not consuming".
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from ._urls import scrub
from .errors import BackendUnavailable

log = logging.getLogger("conveyor.connection")
P = ParamSpec("P")
R = TypeVar("R")
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0
_UNSET = -1.0
#: A retry budget for the calls made in this context (seconds; inf: for ever), set by
#: `budget_for`; _UNSET leaves each guard's own.
_call_budget: contextvars.ContextVar[float] = contextvars.ContextVar(
    "conveyor_call_budget", default=_UNSET
)


@contextlib.contextmanager
def budget_for(seconds: float | None) -> Iterator[None]:
    """Within the block, a producer's guards retry for `seconds` (0: not at all; inf: for
    ever) instead of their own budget; None changes nothing. `apply_async(retry=,
    retry_policy=)` sends through it. A patient (worker) guard keeps waiting for ever."""
    if seconds is None:
        yield
        return
    token = _call_budget.set(seconds)
    try:
        yield
    finally:
        _call_budget.reset(token)


class Guard:
    """Retries the calls of one backend object on transient errors (see the module docstring).
    Thread-safe: several threads may be retrying through one guard at once."""

    def __init__(
        self,
        what: str,
        url: str,
        errors: tuple[type[BaseException], ...],
        budget: float | None = 10.0,
    ) -> None:
        self.what = what
        self._url = url
        self.errors = errors
        self.budget = budget
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._reason = ""

    @property
    def down(self) -> tuple[float, str] | None:
        """(monotonic time it went down, why) while calls are failing; None when healthy."""
        with self._lock:
            return None if self._down_since is None else (self._down_since, self._reason)

    @contextlib.contextmanager
    def patient(self, until: threading.Event) -> Iterator[None]:
        """Worker mode for the duration: retry without a budget until `until` is set (the
        worker is stopping), then raise at once."""
        budget, aborted = self.budget, self._aborted
        self.budget, self._aborted = None, until
        try:
            yield
        finally:
            self.budget, self._aborted = budget, aborted

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        pause = _FIRST_PAUSE
        budget, hint = self.budget, "raise broker_retry_budget to wait longer"
        if budget is not None and (given := _call_budget.get()) != _UNSET:
            budget, hint = given, f"this call's retry/retry_policy allowed {given:g}s"
        while True:
            try:
                result = fn(*args, **kwargs)
            except self.errors as exc:
                reason = scrub(f"{type(exc).__name__}: {exc}", self._url).strip()
                self._went_down(reason)
                waited = time.monotonic() - started
                if budget is not None and waited + pause > budget:
                    raise BackendUnavailable(
                        f"the {self.what} did not answer for {waited:.1f}s ({reason}); the "
                        f"call did not happen — retry it later ({hint})"
                    ) from None
                if self._aborted.wait(pause):
                    raise BackendUnavailable(
                        f"the {self.what} is unreachable ({reason}) and the worker is stopping"
                    ) from None
                pause = min(pause * 2, _MAX_PAUSE)
                continue
            self._came_back()
            return result

    def _went_down(self, reason: str) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            self._reason = reason
        if first:
            log.warning("%s unreachable (%s); retrying", self.what, reason)

    def _came_back(self) -> None:
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("%s reachable again after %.1fs", self.what, time.monotonic() - since)


class Guarded(Protocol):
    guard: Guard


S = TypeVar("S", bound=Guarded)


def guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a backend method through its object's `guard`."""

    def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.guard.call(method, self, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


def guard_of(backend: Any) -> Guard | None:
    """The guard of a backend (server-backed or SQLite); None for the memory backend."""
    guard = getattr(backend, "guard", None)
    return guard if isinstance(guard, Guard) else None
