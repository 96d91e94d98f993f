"""Worker services: the worker's housekeeping, one named job each, each on a thread of its own.

The lease keeper (leases.py) renews leases and does nothing else, so no housekeeping job can
delay a renewal: a purge that takes minutes on a large result table delays only the next purge.

Contract of a `Service`:
* It has one job (`run_once`), a `name` (its thread is `conveyor-<name>`; its log lines name it)
  and an `interval` in seconds.
* `start()` starts its daemon thread, which runs the job at once when `run_at_start` is set,
  then `interval` seconds after each run ends (runs never overlap; a slow run pushes back only
  its own next run).
* A run that raises is logged with the service's name and traceback, counted in `failures`,
  and the job runs again at the next interval. It never ends the thread, the worker or another
  service.
* `stop(timeout)` asks the thread to end and waits up to `timeout` seconds for a run under way
  (runs are not interrupted); it returns False when that run outlasted the wait — the thread is
  a daemon and ends with the process.
* `run_once()` may also be called directly, from any thread (synchronous driving, tests).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from ..brokers.base import Broker, WorkerInfo
from ..errors import BackendUnavailable
from ..results.base import ResultStore, storable_traceback

log = logging.getLogger("conveyor.worker")

PURGE_EVERY = 300.0


class Service:
    """One named job on a daemon thread of its own, every `interval` seconds (module docstring
    states the contract). Subclasses override `run_once`."""

    run_at_start = False

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.failures = 0
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        name = f"conveyor-{self.name}"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        if self.run_at_start:
            self._guarded()
        while not self._stopped.wait(self.interval):
            self._guarded()

    def _guarded(self) -> None:
        try:
            self.run_once()
        except Exception as exc:
            self.failures += 1
            log.error(
                "service %s failed; it runs again in %.1fs\n%s",
                self.name,
                self.interval,
                storable_traceback(exc),
            )

    def stop(self, timeout: float = 5.0) -> bool:
        """End the thread; False if a run was still under way after `timeout` seconds."""
        self._stopped.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()


class Heartbeat(Service):
    """Publishes the worker's record (`info()`) to the broker's worker registry: once when
    started (an unreachable broker fails the start, as it should), every `interval` seconds,
    and a last time marked stopped when stopped. After each periodic beat it calls `on_beat`
    (the worker emits `worker-heartbeat`), which must return at once."""

    def __init__(
        self,
        broker: Broker,
        info: Callable[..., WorkerInfo],
        interval: float,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        super().__init__("heartbeat", interval)
        self._broker = broker
        self._info = info
        self._on_beat = on_beat

    def run_once(self) -> None:
        self._broker.register_worker(self._info())
        if self._on_beat is not None:
            self._on_beat()

    def start(self) -> None:
        """Publish the record (no `on_beat`: the worker's start says worker-online), then beat
        on the thread."""
        self._broker.register_worker(self._info())
        super().start()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the beats, then publish the record marked stopped (skipped during an outage:
        the record then simply ages)."""
        ended = super().stop(timeout)
        with contextlib.suppress(BackendUnavailable):
            self._broker.register_worker(self._info(stopped=True))
        return ended


class Purge(Service):
    """Deletes expired results and, when `dead_letter_retention` is set, dead letters older than
    it: when started, then every `interval` seconds (5 minutes by default)."""

    run_at_start = True

    def __init__(
        self,
        results: ResultStore,
        broker: Broker,
        retention: Callable[[], float | None],
        interval: float = PURGE_EVERY,
    ) -> None:
        super().__init__("purge", interval)
        self._results = results
        self._broker = broker
        self._retention = retention

    def run_once(self) -> None:
        purged = self._results.purge_expired()
        if purged:
            log.info("purged %d expired results", purged)
        retention = self._retention()
        if retention is not None and (dead := self._broker.purge_dead(None, retention)):
            log.info("purged %d dead letters older than %.0fs", dead, retention)
