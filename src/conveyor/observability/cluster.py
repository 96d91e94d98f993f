"""The cluster's metrics, read from the durable stores at each scrape: queue depths and the
oldest ready message's wait (the broker's `queue_stats`), workers alive and lost (its worker
registry), and the schedule's progress (the schedule store). Served by `conveyor metrics`, or
added to a worker's own registry by `conveyor worker --metrics-port P --cluster-metrics`.

Contract of `ClusterCollector`:
- Every scrape reads the stores once, under a lock (concurrent scrapes wait for each other,
  so the stores are never read twice at once); nothing is cached between scrapes and nothing
  is held in this process's memory but the app's configuration.
- Every queue the app's configuration names (`queues_in_use`: `task_default_queue`,
  `task_queues`, `task_routes` destinations, the tasks' queues, `beat_schedule` queues) has
  its series, at 0 when the broker holds nothing for it; so do the queues the broker reports.
- A worker is *lost* when it has not said it stopped and its last heartbeat is older than
  `LOST_AFTER_BEATS` heartbeat intervals (the interval is lease/3, from the app's lease
  setting: a worker silent that long also let its leases run out). Stopped workers are not
  counted. Heartbeats are stamped by each worker's clock and compared with this process's.
- The collector reads through stores of its own (`ClusterStores`), opened on first use with a
  retry budget of `READ_BUDGET` seconds, whatever the app's guards do: a worker's guards wait
  for a server for ever, and a scrape must not. (A `memory://` store lives in the app object,
  so that one is the app's.)
- When a store cannot be read, the scrape logs a warning and reports `conveyor_cluster_up 0`
  and no other cluster series (never half a picture); the next scrape tries again. It never
  raises into the HTTP server.
- A result backend that cannot hold a schedule (a scheme with no schedule store) gives no
  schedule series; that is logged once, not an error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from ..brokers import open_broker
from ..brokers.base import Broker, QueueStats, WorkerInfo
from ..config import lease_seconds
from ..errors import ConfigurationError
from ..finalize import queues_in_use
from ..scheduler.stores import open_schedule_store
from ..scheduler.stores.base import ScheduleStore, StoredEntry

if TYPE_CHECKING:
    from ..app import Conveyor

log = logging.getLogger("conveyor.metrics")

#: Heartbeat intervals without a beat after which a worker that did not stop counts as lost.
LOST_AFTER_BEATS = 3
#: Seconds a scrape retries a store that does not answer before it reports the failure: well
#: inside Prometheus' default 10 s scrape timeout.
READ_BUDGET = 3.0
#: The `state` label values of conveyor_queue_messages, in QueueStats' field names.
QUEUE_STATES = ("ready", "scheduled", "leased", "dead")
WORKER_STATES = ("alive", "lost")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one scrape read: the queue counts, worker records and schedule entries (None when
    the result backend holds no schedule), and the reader's clock when it read them."""

    queues: list[QueueStats]
    workers: list[WorkerInfo]
    entries: list[StoredEntry] | None
    now: float


def worker_states(workers: Iterable[WorkerInfo], now: float, lost_after: float) -> dict[str, int]:
    """How many workers are alive and lost at `now` (see the module docstring)."""
    counts = dict.fromkeys(WORKER_STATES, 0)
    for worker in workers:
        if worker.stopped_at is None:
            counts["lost" if now - worker.heartbeat_at > lost_after else "alive"] += 1
    return counts


class ClusterStores:
    """The broker and schedule store of the app's URLs, opened on first use with a retry
    budget of `READ_BUDGET` (`memory://`: the app's own). Not thread-safe: the collector calls
    it under its lock."""

    def __init__(self, app: Conveyor) -> None:
        self._app = app
        self._settings = replace(app.conf.settings, broker_retry_budget=READ_BUDGET)
        self._broker: Broker | None = None
        self._schedules: ScheduleStore | None = None

    def broker(self) -> Broker:
        if self._broker is None:
            url = self._app.urls[0]
            if _in_process(url):
                self._broker = self._app.broker
            else:
                self._broker = open_broker(url, self._settings, self._app.clock)
        return self._broker

    def schedule_store(self) -> ScheduleStore:
        """Raises ConfigurationError when the result backend holds no schedule."""
        if self._schedules is None:
            url = self._app.urls[1]
            if _in_process(url):
                self._schedules = self._app.schedule_store
            else:
                self._schedules = open_schedule_store(url, self._settings, self._app.clock)
        return self._schedules

    def close(self) -> None:
        """Close the stores opened here (not the app's)."""
        for url, store in ((self._app.urls[0], self._broker), (self._app.urls[1], self._schedules)):
            if store is not None and not _in_process(url):
                store.close()
        self._broker = self._schedules = None


def _in_process(url: str) -> bool:
    return url.split(":", 1)[0].lower() == "memory"


class ClusterCollector:
    """A prometheus-client collector of the cluster series of `app` (module docstring gives
    the contract). `celery_names` also exports `celery_queue_length{queue_name}`, the Celery
    exporter's name for the ready count."""

    def __init__(self, app: Conveyor, celery_names: bool = False) -> None:
        self._app = app
        self._queues = frozenset(queues_in_use(app))
        self._lost_after = LOST_AFTER_BEATS * lease_seconds(app.conf.settings) / 3.0
        self._celery_names = celery_names
        self._lock = threading.Lock()
        self._stores = ClusterStores(app)
        self._schedules_usable = True

    @property
    def lost_after(self) -> float:
        """Seconds without a heartbeat after which a worker counts as lost."""
        return self._lost_after

    def describe(self) -> Iterator[Metric]:
        """Every family this collector yields (registering it reads no store)."""
        yield from self._status(True, 0.0)
        yield from self._families(Snapshot([], [], [], 0.0))

    def collect(self) -> Iterator[Metric]:
        """Read the stores once and yield every family (see the module docstring)."""
        with self._lock:
            started = time.monotonic()
            try:
                snapshot = self._read()
            except Exception as exc:
                log.warning(
                    "cluster metrics: cannot read the stores (%s: %s); this scrape reports "
                    "conveyor_cluster_up 0",
                    type(exc).__name__,
                    exc,
                )
                snapshot = None
            took = time.monotonic() - started
        yield from self._status(snapshot is not None, took)
        if snapshot is not None:
            yield from self._families(snapshot)

    def close(self) -> None:
        """Close the stores this collector opened."""
        with self._lock:
            self._stores.close()

    def _read(self) -> Snapshot:
        """One read of every store, under the lock (raises what the stores raise)."""
        broker = self._stores.broker()
        queues = broker.queue_stats()
        workers = broker.workers()
        return Snapshot(queues, workers, self._entries(), self._app.clock.now())

    def _entries(self) -> list[StoredEntry] | None:
        if not self._schedules_usable:
            return None
        try:
            store = self._stores.schedule_store()
        except ConfigurationError as exc:
            self._schedules_usable = False
            log.warning("cluster metrics: no schedule series (%s)", exc)
            return None
        return store.entries()

    @staticmethod
    def _status(up: bool, took: float) -> list[Metric]:
        ok = GaugeMetricFamily(
            "conveyor_cluster_up", "1 when this scrape read every store, 0 when one failed."
        )
        ok.add_metric([], 1.0 if up else 0.0)
        duration = GaugeMetricFamily(
            "conveyor_cluster_scrape_duration_seconds", "Seconds this scrape spent reading."
        )
        duration.add_metric([], took)
        return [ok, duration]

    def _families(self, snap: Snapshot) -> list[Metric]:
        return [
            *self._queue_families(snap),
            *self._worker_families(snap),
            *self._schedule_families(snap),
        ]

    def _queue_families(self, snap: Snapshot) -> list[Metric]:
        messages = GaugeMetricFamily(
            "conveyor_queue_messages",
            "Messages of a queue by state (ready includes due scheduled messages).",
            labels=["queue", "state"],
        )
        age = GaugeMetricFamily(
            "conveyor_queue_oldest_ready_age_seconds",
            "Seconds the oldest ready message of a queue has waited since it was due.",
            labels=["queue"],
        )
        celery = GaugeMetricFamily(
            "celery_queue_length",
            "Ready messages of a queue (Celery's name).",
            labels=["queue_name"],
        )
        stats = {s.queue: s for s in snap.queues}
        for name in sorted(self._queues | stats.keys()):
            s = stats.get(name, QueueStats(name))
            for state in QUEUE_STATES:
                messages.add_metric([name, state], getattr(s, state))
            age.add_metric([name], s.oldest_ready_age)
            celery.add_metric([name], s.ready)
        return [messages, age, celery] if self._celery_names else [messages, age]

    def _worker_families(self, snap: Snapshot) -> list[Metric]:
        workers = GaugeMetricFamily(
            "conveyor_workers",
            f"Workers that did not stop: alive, or lost (no heartbeat for {self._lost_after:g} s).",
            labels=["state"],
        )
        for state, count in worker_states(snap.workers, snap.now, self._lost_after).items():
            workers.add_metric([state], count)
        return [workers]

    def _schedule_families(self, snap: Snapshot) -> list[Metric]:
        if snap.entries is None:
            return []
        last = GaugeMetricFamily(
            "conveyor_schedule_last_fire_timestamp_seconds",
            "Scheduled time of the entry's latest fire, sent or skipped (epoch seconds).",
            labels=["entry"],
        )
        fires = CounterMetricFamily(
            "conveyor_schedule_fires", "Fires of the entry sent.", labels=["entry"]
        )
        skipped = CounterMetricFamily(
            "conveyor_schedule_skipped",
            "Fires of the entry skipped (due while no scheduler could send them).",
            labels=["entry"],
        )
        for entry in snap.entries:
            if entry.last_fire is not None:
                last.add_metric([entry.name], entry.last_fire)
            fires.add_metric([entry.name], entry.fires)
            skipped.add_metric([entry.name], entry.skipped)
        return [last, fires, skipped]
