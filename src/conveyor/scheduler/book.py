"""`app.schedules`: the schedule as data — list, add, change, pause, resume and remove entries
at run time, without restarting any scheduler (they re-read the store every tick, at most
`beat_max_loop_interval` apart). The `conveyor schedule` command is a thin layer over this.

Entries from `beat_schedule` belong to the app's settings: they can be paused and resumed here,
but changed or removed only in the settings (every scheduler start syncs them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .._names import nearest
from ..errors import ConfigurationError
from ..results.base import Outcome
from ..states import TaskState
from .beat import check_entry, find_duplicate
from .schedule import Entry, Interval, Schedule, due_fires, fire_id, parse_entry, schedule_zone
from .stores.base import Leadership, Source, StoredEntry

if TYPE_CHECKING:
    from ..app import Conveyor

_LOAD_SAMPLE = 20  # recent fires whose outcomes give the average run time


@dataclass(frozen=True, slots=True)
class EntryView:
    """One entry as `conveyor schedule list` shows it.

    next_fire       the next scheduled time (None while paused); a fire already due shows
                    as due
    avg_run         mean run time of the entry's recent fires that have outcomes, or None
    expired         how many of its recent fires were dropped unstarted because they expired
                    (no worker started them before the next fire was due)
    """

    entry: Entry
    stored: StoredEntry
    next_fire: datetime | None
    due: bool
    avg_run: float | None
    expired: int = 0

    @property
    def fires_per_day(self) -> float:
        return self.entry.schedule.fires_per_day()

    @property
    def worker_seconds_per_day(self) -> float | None:
        return None if self.avg_run is None else self.avg_run * self.fires_per_day


class Schedules:
    """The schedule store of an app, with checks. Obtain it as `app.schedules`."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self.store = app.schedule_store
        settings = app.conf.settings
        self.zone = schedule_zone(settings.timezone, settings.enable_utc)

    def list(self, load: bool = True) -> list[EntryView]:
        """Every stored entry (entries that cannot be read are left out), with its next fire
        and, if `load`, the average run time of its recent fires."""
        now = self.app.clock.now()
        views = []
        for stored in self.store.entries():
            try:
                entry = Entry.from_json(stored.name, stored.definition)
            except (ValueError, KeyError, TypeError, ConfigurationError):
                continue
            views.append(self._view(entry, stored, now, load))
        return views

    def _view(self, entry: Entry, stored: StoredEntry, now: float, load: bool) -> EntryView:
        base = stored.last_fire if stored.last_fire is not None else stored.anchor
        due = due_fires(entry.schedule, base, now, self.zone)
        upcoming = due.latest if due.latest is not None else due.following
        outcomes = self._recent_outcomes(entry, stored) if load else ()
        runs = [
            o.finished_at - o.started_at
            for o in outcomes
            if o.started_at is not None and o.finished_at is not None
        ]
        return EntryView(
            entry,
            stored,
            None if stored.paused else upcoming,
            due.latest is not None,
            sum(runs) / len(runs) if runs else None,
            sum(o.state is TaskState.REVOKED and o.reason == "expired" for o in outcomes),
        )

    def _recent_outcomes(self, entry: Entry, stored: StoredEntry) -> tuple[Outcome, ...]:
        if stored.last_fire is None:
            return ()
        fires = recent_fires(entry.schedule, stored.anchor, stored.last_fire, self.zone)
        ids = [fire_id(entry.name, f) for f in fires]
        return tuple(self.app.results.get_many(ids).values())

    def add(
        self,
        name: str,
        task: str,
        schedule: Schedule | float | timedelta,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        expires: float | None = None,
        missed: str = "skip",
        allow_subsecond: bool = False,
    ) -> Entry:
        """Add an entry, or change the run-time entry of that name (its progress is kept).
        Raises ConfigurationError for an unknown task, an undeclared queue, an entry of
        `beat_schedule` by that name, a duplicate of another entry, or an interval below one
        second without `allow_subsecond=True`."""
        options = {"queue": queue, "priority": priority, "expires": expires}
        spec = {
            "task": task,
            "schedule": schedule,
            "args": list(args),
            "kwargs": dict(kwargs or {}),
            "options": {k: v for k, v in options.items() if v is not None},
            "missed": missed,
            "allow_subsecond": allow_subsecond,
        }
        entry = parse_entry(name, spec)
        check_entry(self.app, entry)
        others = [
            Entry.from_json(s.name, s.definition) for s in self.store.entries() if s.name != name
        ]
        problem = find_duplicate(entry, others)
        if problem:
            raise ConfigurationError(problem)
        if not self.store.put(name, entry.to_json()):
            raise ConfigurationError(
                f"schedule entry {name!r} comes from beat_schedule: change it in the app's "
                "settings (every scheduler start syncs them), or add it under another name"
            )
        return entry

    def pause(self, name: str) -> None:
        self._must(self.store.set_paused(name, True), name)

    def resume(self, name: str) -> None:
        self._must(self.store.set_paused(name, False), name)

    def remove(self, name: str) -> None:
        """Remove a run-time entry. An entry of `beat_schedule` is refused: it would come back
        at the next scheduler start (pause it, or delete it from the settings)."""
        stored = {s.name: s for s in self.store.entries()}.get(name)
        if stored is not None and stored.source is Source.CONFIG:
            raise ConfigurationError(
                f"schedule entry {name!r} comes from beat_schedule: remove it from the app's "
                f"settings (or pause it: conveyor schedule pause {name!r})"
            )
        self._must(self.store.remove(name), name)

    def leadership(self) -> Leadership:
        return self.store.leadership()

    def _must(self, found: bool, name: str) -> None:
        if found:
            return
        names = [s.name for s in self.store.entries()]
        close = nearest(name, names)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigurationError(f"no schedule entry named {name!r}{hint}")


def recent_fires(sched: Schedule, anchor: float, last: float, zone: Any) -> list[datetime]:
    """Up to the last few fire times of an entry, ending at `last`."""
    end = datetime.fromtimestamp(last, timezone.utc)
    if isinstance(sched, Interval):
        count = min(_LOAD_SAMPLE, due_fires(sched, anchor, last, zone).count)
        return [end - timedelta(seconds=k * sched.seconds) for k in range(count)]
    days = _LOAD_SAMPLE / max(sched.fires_per_day(), 1e-3) + 1
    start = max(anchor, last - days * 86400.0)
    fires: list[datetime] = []
    fire = sched.next_after(datetime.fromtimestamp(start, timezone.utc), zone)
    while fire <= end:
        fires.append(fire)
        fire = sched.next_after(fire, zone)
    return fires[-_LOAD_SAMPLE:]
