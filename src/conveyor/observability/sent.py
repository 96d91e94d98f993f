"""Counting the calls producers send, from the broker's event stream: `conveyor_tasks_sent_total`
(and the Celery exporter's `celery_task_sent_total`), served by the cluster exporter.

No worker sees a send, so the count comes from the `task-sent` events producers publish when the
setting `task_send_sent_event` is on (events/stream.py); a producer without it is not counted.

Contract of `SentCounter`:
- It follows the stream from the moment it starts ("from now", like `conveyor events`): counts
  start at 0 with the exporter, as a Prometheus counter may.
- A thread of its own reads what is new every `interval` seconds, all of it, page by page; a
  scrape never waits for the broker because of it.
- Each `task-sent` entry is counted once per counter (the cursor only moves forward). Entries of
  other types, and entries it cannot decode, are skipped. Entries the stream trimmed before they
  were read (more than its limit published within one interval) are not counted.
- A read that fails is logged (the first, then once per `error_log_every`) and retried at the
  next interval from the same cursor: nothing is counted twice, nothing raised.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter

from ..brokers.base import last_cursor
from ..events.types import EventDecodeError, TaskSent, decode_json
from ..worker.celery_metrics import host_of
from ..worker.labels import Children
from .cluster import ClusterStores

if TYPE_CHECKING:
    from ..app import Conveyor

log = logging.getLogger("conveyor.metrics")

PAGE = 1_000
DEFAULT_INTERVAL = 1.0
DEFAULT_ERROR_LOG_EVERY = 60


class SentCounter:
    """Counts `task-sent` events of `app`'s broker into `registry` (module docstring). With
    `celery_names`, `celery_task_sent_total{name,hostname,queue_name}` too."""

    def __init__(
        self,
        app: Conveyor,
        registry: CollectorRegistry,
        *,
        celery_names: bool = False,
        interval: float = DEFAULT_INTERVAL,
        error_log_every: int = DEFAULT_ERROR_LOG_EVERY,
    ) -> None:
        self._stores = ClusterStores(app)
        self._interval = interval
        self._error_log_every = error_log_every
        self.errors = 0
        self._child = Children()
        self._sent = Counter(
            "conveyor_tasks_sent",
            "Calls producers sent, from their task-sent events (task_send_sent_event).",
            ["task", "queue"],
            registry=registry,
        )
        self._celery = (
            Counter(
                "celery_task_sent",
                "Sent when a task message is published.",
                ["name", "hostname", "queue_name"],
                registry=registry,
            )
            if celery_names
            else None
        )
        self._cursor: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conveyor-sent-counter", daemon=True)

    def start(self) -> SentCounter:
        """Start following the stream from now (the position is taken here, when the broker
        answers; else by the thread's first read); returns self."""
        self._attempt()
        self._thread.start()
        return self

    def poll(self) -> int:
        """Read and count everything new (raises what the broker raises); returns how many
        entries were read."""
        broker = self._stores.broker()
        if self._cursor is None:
            self._cursor = last_cursor(broker)
            return 0
        read = 0
        while True:
            entries = broker.read_events(self._cursor, PAGE)
            for entry in entries:
                self._count(entry.body)
                self._cursor = entry.cursor
            read += len(entries)
            if len(entries) < PAGE:
                return read

    def close(self, timeout: float = 5.0) -> None:
        """Stop following and close the broker opened here."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._stores.close()

    def _count(self, body: bytes) -> None:
        try:
            event = decode_json(body)
        except (EventDecodeError, ValueError):
            return  # not ours to judge: `conveyor events` shows it as a warning
        if not isinstance(event, TaskSent):
            return
        self._child(self._sent, event.name, event.queue).inc()
        if self._celery is not None:
            self._child(self._celery, event.name, host_of(event.hostname), event.queue).inc()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._attempt()

    def _attempt(self) -> None:
        try:
            self.poll()
        except Exception as exc:
            self.errors += 1
            if self.errors == 1 or self.errors % self._error_log_every == 0:
                log.warning(
                    "counting sent calls: cannot read the event stream (%s: %s; %d errors "
                    "so far); trying again every %.0f s",
                    type(exc).__name__,
                    exc,
                    self.errors,
                    self._interval,
                )
