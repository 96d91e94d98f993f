"""The scheduler loop (Celery's beat): any number may run; the leader fires.

Each `tick` checks the lease (see leader.py); the leader reads every entry from the store and,
for each one due, sends its newest due fire with the deterministic id `fire_id(entry, time)`,
then moves the entry's `last_fire` on with a compare-and-set. The order matters:

* send first, record after: a scheduler that dies in between leaves `last_fire` behind, so the
  next leader sends the same fire again — and the broker, knowing the id, stores nothing. A
  fire is never lost and never doubled, whoever dies when.
* only the newest due fire is sent. Older ones (everything was down) are counted as skipped
  and logged; the newest is sent if it is at most `beat_misfire_grace_time` late, or whatever
  its lateness for `missed="catch_up"` entries, and skipped otherwise.

A fire's default `expires` is the entry's next fire time: a poll that could not start before
the next one is due is dropped by the worker (and counted as expired) instead of piling up.
An explicit `options.expires` counts from the send, as in Celery.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import BackendUnavailable, ConfigurationError, ConveyorError
from ..events import EventType, ScheduleFired, ScheduleSkipped
from ..events.stream import SCHEDULE_EVENTS, publish
from ..options import CallOptions
from .leader import Leader, holder_name
from .schedule import (
    Entry,
    Missed,
    check_duplicates,
    due_fires,
    duplicate_message,
    fire_id,
    parse_beat_schedule,
    schedule_zone,
)
from .stores.base import ScheduleStore, Source, StoredEntry

if TYPE_CHECKING:
    from ..app import Conveyor

log = logging.getLogger("conveyor.beat")


@dataclass(frozen=True, slots=True)
class BeatOptions:
    """lease: seconds of the leader lease; max_interval: longest sleep between ticks (run-time
    changes to the schedule are seen within it); grace: how late a fire may still be sent."""

    lease: float
    max_interval: float
    grace: float
    holder: str

    @classmethod
    def from_settings(cls, s: Settings, holder: str | None = None) -> BeatOptions:
        return cls(
            lease=s.beat_lease_seconds,
            max_interval=s.beat_max_loop_interval,
            grace=s.beat_misfire_grace_time,
            holder=holder or holder_name(),
        )


@dataclass
class BeatStats:
    """What this scheduler did: fires it sent that the broker stored, fires it sent that
    another scheduler had already sent (stored once), and fires it skipped."""

    sent: int = 0
    already_sent: int = 0
    skipped: int = 0


class Beat:
    """One scheduler. `start()` syncs `beat_schedule` into the store; then call `tick()` (it
    returns how long to wait) or `run(stop)`. Not thread-safe: one thread drives it."""

    def __init__(
        self, app: Conveyor, options: BeatOptions | None = None, store: ScheduleStore | None = None
    ) -> None:
        settings = app.conf.settings
        self.app = app
        self.options = options or BeatOptions.from_settings(settings)
        self.store = store or app.schedule_store
        self.zone = schedule_zone(settings.timezone, settings.enable_utc)
        self.leader = Leader(self.store, self.options.lease, app.clock, self.options.holder)
        self.stats = BeatStats()
        self._bad: set[tuple[str, float, str]] = set()  # entries already reported as unusable

    def start(self) -> list[Entry]:
        """Check `beat_schedule` (entries well formed, tasks known, no duplicates, also with
        the entries added at run time) and store it. Returns the configured entries."""
        entries = configured_entries(self.app)
        runtime = [
            e
            for e in (self._decode(s) for s in self.store.entries() if s.source is Source.RUNTIME)
            if e is not None and e.name not in {c.name for c in entries}
        ]
        check_duplicates([*entries, *runtime])
        self.store.sync({e.name: e.to_json() for e in entries})
        return entries

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then resign the lease. Meanwhile the schedule's events
        are published to the broker's event stream (`conveyor events`)."""
        publisher = publish(self.app.events, self.app.broker, SCHEDULE_EVENTS)
        try:
            self._run(stop)
        finally:
            publisher.close()

    def _run(self, stop: threading.Event) -> None:
        log.warning(
            "scheduler %s started: lease %.1f s, store %r",
            self.options.holder,
            self.options.lease,
            self.store,
        )
        try:
            while not stop.is_set():
                try:
                    wait = self.tick()
                except ConveyorError as exc:
                    log.warning("scheduler %s: %s", self.options.holder, exc)
                    wait = min(1.0, self.options.lease / 3)
                stop.wait(wait)
        finally:
            self.leader.resign()

    def tick(self) -> float:
        """Fire what is due if this scheduler leads. Returns the seconds until the next tick
        is needed."""
        standing = self.leader.check()
        if not standing.leading:
            return standing.check_in
        now = self.app.clock.now()
        wait = min(standing.check_in, self.options.max_interval)
        for stored in self.store.entries():
            if not self.leader.leading_at(self.app.clock.now()):
                return 0.0  # the lease ran out while firing: check it again at once
            entry = self._decode(stored)
            if entry is None:
                continue
            try:
                if stored.paused:
                    self._pass_over(entry, stored, now)
                else:
                    wait = min(wait, self._tick_entry(entry, stored, now) - now)
            except BackendUnavailable:
                raise  # nothing else will work either: the loop backs off
            except ConveyorError as exc:  # this entry only (an unknown task, a bad route)
                self._report(stored, f"cannot be sent: {exc}")
        return max(0.0, wait)

    def _tick_entry(self, entry: Entry, stored: StoredEntry, now: float) -> float:
        """Handle one entry; return when it next needs attention (epoch seconds)."""
        base = stored.last_fire if stored.last_fire is not None else stored.anchor
        due = due_fires(entry.schedule, base, now, self.zone)
        if due.latest is None:
            return due.following.timestamp()
        latest = due.latest.timestamp()
        skipped = due.count - 1
        send = now - latest <= self.options.grace or entry.missed is Missed.CATCH_UP
        if send:
            self._send(entry, due.latest, due.following)
        else:
            skipped += 1
        if self.store.advance(entry.name, stored.last_fire, latest, int(send), skipped):
            self.stats.skipped += skipped
            if skipped:
                self._skipped(entry, latest, skipped, send, now - latest)
                log.warning(
                    "schedule %r: skipped %d fire(s) that came due while no scheduler ran "
                    "(the last at %s); missed=%s",
                    entry.name,
                    skipped,
                    _shown(due.latest),
                    entry.missed.value,
                )
        return due.following.timestamp()

    def _skipped(self, entry: Entry, latest: float, count: int, sent: bool, late: float) -> None:
        """Emit schedule-skipped once per tick that skipped fires of `entry`, `scheduled_for`
        the newest due fire: skipped itself when too late, else sent after the skipped ones."""
        bus = self.app.events
        if not bus.wanted(EventType.SCHEDULE_SKIPPED):
            return
        if sent:
            reason = f"{count} older fire(s) came due while no scheduler ran; the newest was sent"
        else:
            reason = (
                f"{count} fire(s) missed; the newest was {late:.1f}s late, past "
                f"beat_misfire_grace_time ({self.options.grace:g}s), missed={entry.missed.value}"
            )
        bus.emit(
            ScheduleSkipped(
                hostname=self.options.holder,
                timestamp=self.app.clock.now(),
                entry=entry.name,
                name=entry.task,
                scheduled_for=latest,
                reason=reason,
            )
        )

    def _pass_over(self, entry: Entry, stored: StoredEntry, now: float) -> None:
        """A paused entry's fires are not missed fires: move its last fire on uncounted, so
        that resuming it neither sends nor reports anything for the pause."""
        base = stored.last_fire if stored.last_fire is not None else stored.anchor
        due = due_fires(entry.schedule, base, now, self.zone)
        if due.latest is not None:
            self.store.advance(entry.name, stored.last_fire, due.latest.timestamp(), 0, 0)

    def _send(self, entry: Entry, at: datetime, following: datetime) -> None:
        task_id = fire_id(entry.name, at)
        call = CallOptions(
            task_id=task_id,
            queue=entry.queue,
            priority=entry.priority,
            expires=entry.expires if entry.expires is not None else following,
            time_limit=entry.time_limit,
            soft_time_limit=entry.soft_time_limit,
        )
        stored = self.app.send_once(entry.task, entry.args, dict(entry.kwargs), call)
        if stored:
            self.stats.sent += 1
            log.info("schedule %r: sent %s (%s)", entry.name, entry.task, call.task_id)
            bus = self.app.events
            if bus.wanted(EventType.SCHEDULE_FIRED):
                bus.emit(
                    ScheduleFired(
                        hostname=self.options.holder,
                        timestamp=self.app.clock.now(),
                        entry=entry.name,
                        name=entry.task,
                        uuid=task_id,
                        scheduled_for=at.timestamp(),
                    )
                )
        else:
            self.stats.already_sent += 1
            log.info("schedule %r: %s was already sent", entry.name, call.task_id)

    def _decode(self, stored: StoredEntry) -> Entry | None:
        try:
            return Entry.from_json(stored.name, stored.definition)
        except (ValueError, KeyError, TypeError, ConfigurationError) as exc:
            self._report(stored, f"cannot be read ({exc}): it does not fire")
            return None

    def _report(self, stored: StoredEntry, problem: str) -> None:
        """Log a problem with one entry once per version of it (it is retried every tick)."""
        key = (stored.name, stored.updated_at, problem)
        if key not in self._bad:
            self._bad.add(key)
            log.error("schedule %r %s", stored.name, problem)


def run_in_thread(scheduler: Beat) -> tuple[threading.Thread, threading.Event]:
    """Run a started scheduler on a daemon thread (`worker --beat`). Set the event to stop it;
    it resigns the lease on the way out."""
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), name="conveyor-beat", daemon=True)
    thread.start()
    return thread, stop


def configured_entries(app: Conveyor) -> list[Entry]:
    """The app's `beat_schedule`, checked: every task must be registered (or published by a
    worker), every queue declared if `task_queues` is set."""
    app.finalize("starting the scheduler")
    entries = parse_beat_schedule(app.conf.settings.beat_schedule)
    for entry in entries:
        check_entry(app, entry)
    return entries


def check_entry(app: Conveyor, entry: Entry) -> None:
    """An entry's task must be known and its queue declared (when queues are declared and
    `task_create_missing_queues` is False; when True, a fire to an undeclared queue is sent
    with the routing warning, as Celery creates the queue)."""
    try:
        app.check_task_name(entry.task)
    except ConveyorError as exc:
        raise ConfigurationError(f"schedule entry {entry.name!r}: {exc}") from None
    _check_priority(app, entry)
    settings = app.conf.settings
    declared = None if settings.task_create_missing_queues else settings.task_queues
    if entry.queue and declared is not None and entry.queue not in {q.name for q in declared}:
        raise ConfigurationError(
            f"schedule entry {entry.name!r} sends to queue {entry.queue!r}, which task_queues "
            f"does not declare ({', '.join(q.name for q in declared)})"
        )


def _check_priority(app: Conveyor, entry: Entry) -> None:
    """An entry's priority must fit the scale of the queue it goes to (conveyor.priorities)."""
    if entry.priority is None:
        return
    task = app.tasks.get(entry.task)
    opts = task.options if task is not None else None
    try:
        app.route_table.decide(
            entry.task,
            task_queue=opts.queue if opts else None,
            call_queue=entry.queue,
            call_priority=entry.priority,
            task=task,
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"schedule entry {entry.name!r}: {exc}") from None
    except Exception:  # a router that needs the call's arguments: checked when it fires
        return


def find_duplicate(entry: Entry, others: list[Entry]) -> str | None:
    """The error for `entry` duplicating one of `others` (by another name), or None."""
    for other in others:
        if other.name != entry.name and other.identity() == entry.identity():
            return duplicate_message(other, entry)
    return None


def _shown(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
