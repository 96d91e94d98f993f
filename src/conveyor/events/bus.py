"""The in-process event bus: producers `emit`, observers `subscribe`.

Contract:
- `emit(event)` never blocks on an observer and never raises. It appends the event to the buffer
  of every matching subscription and returns; nothing it does waits for an observer to run.
  Something that is not an event (no EventType `type`) is logged, counted in `refused`, dropped.
- Each subscription has its own bounded buffer, drained by its own daemon thread that calls the
  observer once per event. A slow or stuck observer fills its own buffer and delays nobody else.
  The thread wakes once per batch, not per event: it lingers `LINGER` seconds after the first
  event of a batch, so an event reaches its observer that much later, at most, plus the time
  the observer spends on the events before it.
- Order: every subscription sees events in one order, the order in which `emit` calls took the
  bus's lock; events emitted by one thread arrive in that thread's order.
- At most once: an event is delivered to an observer once or not at all. When a buffer is full the
  new event is dropped for that subscription and counted in its `dropped`; other subscriptions
  still get it.
- An observer that raises is counted in `errors` and logged with its name (the first error, then
  one line per `error_log_every` errors, never one per event); later events still reach it.
- `wanted(type)` says whether any open subscription takes that type: producers ask it before
  building an event, so a process nobody observes does no per-event work.
- `Subscription.close(timeout)` stops new events, lets the thread deliver what is buffered until
  the deadline, and counts what is left undelivered as dropped. `EventBus.close` closes all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from .types import Event, EventType

logger = logging.getLogger("conveyor.events")

Observer = Callable[[Event], object]
#: An observer of batches: called with every event one wake-up took, in order.
BatchObserver = Callable[[list[Event]], object]

DEFAULT_BUFFER_SIZE = 10_000
DEFAULT_ERROR_LOG_EVERY = 1_000
#: Seconds a woken drain thread waits for more events before delivering: the most an event
#: is delayed by batching.
LINGER = 0.005


def observer_name(observer: Observer | BatchObserver) -> str:
    """`module.qualname` of a function or method; the repr of anything else."""
    qualname = getattr(observer, "__qualname__", None)
    module = getattr(observer, "__module__", None)
    if isinstance(qualname, str):
        return f"{module}.{qualname}" if isinstance(module, str) else qualname
    return repr(observer)


class Subscription:
    """One observer's buffer, drain thread and counters; made by `EventBus.subscribe`.

    Counters (read at any time): `delivered` (observer returned), `errors` (observer raised),
    `dropped` (buffer full, or left undelivered at close), `wakeups` (batches delivered)."""

    def __init__(
        self,
        bus: EventBus,
        observer: Observer,
        types: frozenset[EventType] | None,
        buffer_size: int,
        error_log_every: int,
        batches: BatchObserver | None = None,
    ) -> None:
        self.observer = observer
        self._batches = batches
        self.name = observer_name(batches if batches is not None else observer)
        self.types = types
        self.buffer_size = buffer_size
        self.delivered = 0
        self.errors = 0
        self.dropped = 0
        self.wakeups = 0  # times the drain thread woke to deliver a batch
        self._bus = bus
        self._error_log_every = error_log_every
        self._buffer: deque[Event] = deque()
        # offer() takes the plain lock (cheaper than entering the Condition); the Condition
        # shares it, so notify() is legal under it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._open = True
        self._thread = threading.Thread(
            target=self._run, name=f"conveyor-events:{self.name}", daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return (
            f"<Subscription {self.name}: delivered={self.delivered} dropped={self.dropped} "
            f"errors={self.errors}>"
        )

    @property
    def closed(self) -> bool:
        return not self._open

    def offer(self, event: Event) -> None:
        """Buffer `event` if it matches and there is room; otherwise count it as dropped."""
        if self.types is not None and event.type not in self.types:
            return
        with self._lock:
            if not self._open:
                return
            if len(self._buffer) >= self.buffer_size:
                self.dropped += 1
                return
            self._buffer.append(event)
            if len(self._buffer) == 1:  # the drain thread only ever waits on an empty buffer
                self._cond.notify()

    def close(self, timeout: float = 5.0) -> bool:
        """Stop receiving, deliver what is buffered within `timeout` seconds; True when the
        observer has returned from every event, False when it is still busy at the deadline
        (what was still buffered then is dropped and counted). Called from the observer itself,
        it drops what is buffered and returns False."""
        self._bus._remove(self)
        with self._cond:
            self._open = False
            self._cond.notify_all()
        own = threading.current_thread() is self._thread
        if not own:
            self._thread.join(max(timeout, 0.0))
        with self._cond:
            left = len(self._buffer)
            self.dropped += left
            self._buffer.clear()
        return left == 0 and not own and not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._open and not self._buffer:
                    self._cond.wait()
                if not self._buffer:
                    return
                if self._open:
                    # Linger, so that what arrives meanwhile is delivered in this wake-up: one
                    # thread switch per batch instead of one per event (a busy worker emits
                    # several events per call). Only close() notifies during this wait.
                    self._cond.wait(LINGER)
                self.wakeups += 1
                if self._batches is not None:
                    batch = list(self._buffer)
                    self._buffer.clear()
            if self._batches is not None:
                self._deliver_batch(self._batches, batch)
                continue
            while (event := self._next()) is not None:
                self._deliver(event)

    def _deliver_batch(self, observer: BatchObserver, batch: list[Event]) -> None:
        try:
            observer(batch)
        except BaseException:  # even SystemExit, as in _deliver
            self.errors += 1
            if self.errors == 1 or self.errors % self._error_log_every == 0:
                logger.exception(
                    "event observer %s raised on a batch of %d events (%d errors so far; "
                    "logged once per %d); fix the observer or close its subscription",
                    self.name,
                    len(batch),
                    self.errors,
                    self._error_log_every,
                )
        else:
            self.delivered += len(batch)

    def _next(self) -> Event | None:
        with self._cond:
            return self._buffer.popleft() if self._buffer else None

    def _deliver(self, event: Event) -> None:
        try:
            self.observer(event)
        except BaseException:  # even SystemExit: it would end this thread and starve the observer
            self.errors += 1
            if self.errors == 1 or self.errors % self._error_log_every == 0:
                logger.exception(
                    "event observer %s raised on a %s event (%d errors so far; logged once per "
                    "%d); fix the observer or close its subscription",
                    self.name,
                    event.type.value,
                    self.errors,
                    self._error_log_every,
                )
        else:
            self.delivered += 1


class EventBus:
    """Fan-out of events to observers, each on its own thread behind a bounded buffer.

    `buffer_size` is the default capacity of a subscription's buffer (events); an observer that
    raises is logged on its first error and then once per `error_log_every` errors."""

    def __init__(
        self,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        error_log_every: int = DEFAULT_ERROR_LOG_EVERY,
    ) -> None:
        _check_positive("buffer_size", buffer_size)
        _check_positive("error_log_every", error_log_every)
        self.buffer_size = buffer_size
        self.error_log_every = error_log_every
        self.refused = 0  # emit calls given something that is not an event
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()
        self._wanted: frozenset[EventType] = frozenset()  # types some subscription takes
        # The subscriptions taking each type, so emit offers an event only where it is taken.
        self._by_type: dict[EventType, tuple[Subscription, ...]] = {}

    def __repr__(self) -> str:
        return f"<EventBus: {len(self._subscriptions)} subscriptions>"

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subscriptions

    def subscribe(
        self,
        observer: Observer,
        types: Iterable[EventType | str] | None = None,
        *,
        buffer_size: int | None = None,
    ) -> Subscription:
        """Call `observer(event)` on a thread of its own for every event emitted from now on
        (only those whose type is in `types`, Celery names or EventType, when given)."""
        wanted, size = self._checked(types, buffer_size)
        return self._add(Subscription(self, observer, wanted, size, self.error_log_every))

    def subscribe_batches(
        self,
        observer: BatchObserver,
        types: Iterable[EventType | str] | None = None,
        *,
        buffer_size: int | None = None,
    ) -> Subscription:
        """Like `subscribe`, but `observer(events)` is called once per wake-up of its thread
        with every event buffered then (a list, in order): for observers whose work per event
        is small beside a call, such as counting. A raising call counts one error, and its
        events are not counted as delivered; closing delivers what is buffered as one batch."""
        wanted, size = self._checked(types, buffer_size)
        return self._add(
            Subscription(self, _unused, wanted, size, self.error_log_every, batches=observer)
        )

    def _checked(
        self, types: Iterable[EventType | str] | None, buffer_size: int | None
    ) -> tuple[frozenset[EventType] | None, int]:
        wanted = None if types is None else frozenset(_event_type(t) for t in types)
        size = self.buffer_size if buffer_size is None else buffer_size
        _check_positive("buffer_size", size)
        return wanted, size

    def _add(self, subscription: Subscription) -> Subscription:
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
            self._wanted = _wanted(self._subscriptions)
            self._by_type = _by_type(self._subscriptions)
        return subscription

    @property
    def has_subscribers(self) -> bool:
        """True while some subscription is open."""
        return bool(self._subscriptions)

    def wanted(self, kind: EventType) -> bool:
        """True when some open subscription takes events of type `kind`: producers check it
        before building an event, so nobody listening costs one set lookup and no lock."""
        return kind in self._wanted

    def emit(self, event: Event) -> None:
        """Hand `event` to every subscription's buffer; never blocks on an observer, never
        raises (something that is not an event is logged, counted in `refused` and dropped)."""
        subscriptions = self._by_type.get(getattr(event, "type", None))  # type: ignore[arg-type]
        if subscriptions is None:
            if not isinstance(getattr(event, "type", None), EventType):
                self._refuse(event)
            return
        try:
            if len(subscriptions) == 1:  # one buffer: the bus's lock would order nothing
                subscriptions[0].offer(event)
                return
            with self._lock:
                for subscription in subscriptions:
                    subscription.offer(event)
        except Exception:  # offer only appends and counts; this guards the "never raises"
            logger.exception("could not emit event %r; it was dropped", event)

    def _refuse(self, event: object) -> None:
        with self._lock:
            self.refused += 1
            count = self.refused
        if count == 1 or count % self.error_log_every == 0:
            logger.error(
                "could not emit %r: not an event of conveyor.events (no EventType `type`); "
                "dropped (%d so far, logged once per %d); emit one of its event classes",
                event,
                count,
                self.error_log_every,
            )

    def close(self, timeout: float = 5.0) -> bool:
        """Close every subscription, sharing one `timeout` (seconds) to drain their buffers;
        True when every buffered event was delivered."""
        deadline = time.monotonic() + timeout
        drained = True
        for subscription in self._subscriptions:
            left = deadline - time.monotonic()
            drained = subscription.close(left) and drained
        return drained

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
            self._wanted = _wanted(self._subscriptions)
            self._by_type = _by_type(self._subscriptions)


def _unused(event: Event) -> None:
    """The per-event observer of a batch subscription: never called."""


def _by_type(
    subscriptions: tuple[Subscription, ...],
) -> dict[EventType, tuple[Subscription, ...]]:
    by_type = {
        kind: tuple(s for s in subscriptions if s.types is None or kind in s.types)
        for kind in EventType
    }
    return {kind: taken for kind, taken in by_type.items() if taken}


def _wanted(subscriptions: tuple[Subscription, ...]) -> frozenset[EventType]:
    found: set[EventType] = set()
    for subscription in subscriptions:
        found |= set(EventType) if subscription.types is None else subscription.types
    return frozenset(found)


def _event_type(value: EventType | str) -> EventType:
    try:
        return EventType(value)
    except ValueError:
        known = ", ".join(t.value for t in EventType)
        raise ValueError(f"unknown event type {value!r}; use one of: {known}") from None


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of events, 1 or more; got {value!r}")
