"""Publishing a process's events to the cluster's event stream in the broker (`conveyor events`
reads it).

Contract of `EventPublisher`:
- It observes an EventBus (`publish(bus, broker, types)` subscribes it): the bus's thread
  encodes each event (`encode_json`) and queues it here; nothing is done on the thread that
  emitted the event, so the task path never waits for the broker.
- Its own daemon thread takes everything queued (at most `batch_size` events) and publishes it
  in one `broker.publish_events` call, so a busy process pays one round trip per batch.
- Best effort, at most once: a batch the broker refuses (an error of any kind) is logged (the
  first error, then once per `error_log_every` failed batches) and dropped, counted in
  `dropped`; nothing is raised into the process. When `max_pending` events are waiting (the
  broker is slow or down) new ones are dropped and counted too.
- `close(timeout)` stops observing, publishes what is queued within the deadline, and counts
  what is left as dropped. Returns True when nothing was left queued at the deadline (batches
  the broker refused earlier are in `dropped`, not in this answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from ..brokers.base import Broker
from .bus import EventBus, Subscription
from .types import Event, EventType, encode_json

logger = logging.getLogger("conveyor.events.stream")

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_PENDING = 10_000
DEFAULT_ERROR_LOG_EVERY = 100

#: What a worker always publishes, like Celery's worker events.
WORKER_EVENTS = frozenset(
    {EventType.WORKER_ONLINE, EventType.WORKER_HEARTBEAT, EventType.WORKER_OFFLINE}
)
#: What a worker publishes with `-E` / worker_send_task_events (task-sent is the producer's).
TASK_EVENTS = frozenset(
    t for t in EventType if t.value.startswith("task-") and t is not EventType.TASK_SENT
)
#: What a scheduler publishes.
SCHEDULE_EVENTS = frozenset({EventType.SCHEDULE_FIRED, EventType.SCHEDULE_SKIPPED})


class EventPublisher:
    """Batches encoded events to `broker.publish_events` from a thread of its own (see the
    module docstring). Counters, readable at any time: `published`, `dropped`, `failed_batches`."""

    def __init__(
        self,
        broker: Broker,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        error_log_every: int = DEFAULT_ERROR_LOG_EVERY,
    ) -> None:
        self.broker = broker
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.published = 0
        self.dropped = 0
        self.failed_batches = 0
        self._error_log_every = error_log_every
        self._pending: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._open = True
        self._subscription: Subscription | None = None
        self._thread = threading.Thread(
            target=self._run, name="conveyor-event-publisher", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"<EventPublisher published={self.published} dropped={self.dropped} "
            f"failed_batches={self.failed_batches}>"
        )

    @property
    def pending(self) -> int:
        """Events queued and not yet taken into a batch."""
        return len(self._pending)

    def observe(self, event: Event) -> None:
        """Queue one event for the next batch (called on the bus's thread)."""
        body = encode_json(event)
        with self._cond:
            if not self._open or len(self._pending) >= self.max_pending:
                self.dropped += 1
                return
            self._pending.append(body)
            self._cond.notify()

    def subscribe(self, bus: EventBus, types: Iterable[EventType]) -> EventPublisher:
        """Observe `bus` for events of `types`; returns self."""
        self._subscription = bus.subscribe(self.observe, types=types)
        return self

    def close(self, timeout: float = 5.0) -> bool:
        """Stop observing, publish what is queued within `timeout` seconds, count the rest as
        dropped; True when nothing was left queued at the deadline."""
        deadline = time.monotonic() + timeout
        drained = True
        if self._subscription is not None:
            drained = self._subscription.close(timeout)
        with self._cond:
            self._open = False
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = len(self._pending)
            self.dropped += left
            self._pending.clear()
        return drained and left == 0 and not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._open and not self._pending:
                    self._cond.wait()
                if not self._pending:
                    return
                count = min(len(self._pending), self.batch_size)
                batch = [self._pending.popleft() for _ in range(count)]
            self._publish(batch)

    def _publish(self, batch: list[bytes]) -> None:
        try:
            self.broker.publish_events(batch)
        except Exception:
            with self._cond:
                self.failed_batches += 1
                self.dropped += len(batch)
                failed = self.failed_batches
            if failed == 1 or failed % self._error_log_every == 0:
                logger.exception(
                    "could not publish %d event(s) to the event stream of %r; dropped "
                    "(%d failed batches so far, logged once per %d). `conveyor events` will "
                    "miss them; the tasks are not affected",
                    len(batch),
                    self.broker,
                    failed,
                    self._error_log_every,
                )
        else:
            with self._cond:
                self.published += len(batch)


def publish(bus: EventBus, broker: Broker, types: Iterable[EventType]) -> EventPublisher:
    """Start publishing the events of `types` emitted on `bus` to `broker`'s event stream."""
    return EventPublisher(broker).subscribe(bus, types)
