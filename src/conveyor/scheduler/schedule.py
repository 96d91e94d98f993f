"""Schedule entries: what `beat_schedule` (or `conveyor schedule add`) defines, in Celery's format.

An entry is a task, its arguments, its send options and a schedule — an `Interval` (seconds, a
timedelta, Celery's `schedule(run_every=…)`), a `crontab` or a `solar` event. Entries are stored
as JSON text (`Entry.to_json`), so every store keeps them the same way and `conveyor schedule
list` can read entries that a worker with other code added.

Fire times are exact and shared by every scheduler: an interval entry fires at the multiples of
its interval since the epoch (every 300 s fires at :00, :05, :10 … past the hour; every hour on
the hour), a crontab entry at its matching minutes in the schedule's zone, a solar entry at its
event's second (scheduler/solar.py). Nothing is due
before the entry's anchor (when it was first stored), and nothing drifts with the time a fire
was actually sent, which is what lets any scheduler compute the same fire — and the same message
id — as any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from .._names import did_you_mean
from ..bounds import MAX_SECONDS, check_queue_name
from ..errors import ConfigurationError
from ..options import check_priority
from .cron import crontab
from .solar import solar

_MAX_SCAN = 100_000  # due fires counted one by one before giving up on exact counts
MIN_INTERVAL = 1.0  # seconds; shorter intervals need the entry's allow_subsecond
FLOOR_INTERVAL = 0.001  # seconds; no interval is shorter, allow_subsecond or not
MAX_ENTRY_NAME = 200  # its fire ids ("beat:<name>@<time>Z") stay within task ids' bound


class Missed(str, Enum):
    """What a scheduler does with fires that came due while no scheduler was running.

    SKIP      (default) fires older than the misfire grace are not sent; each is logged and
              counted, and the entry waits for its next fire.
    CATCH_UP  the newest missed fire is sent once (older ones are counted as skipped): the
              work happens once, however long everything was down.
    """

    SKIP = "skip"
    CATCH_UP = "catch_up"


@dataclass(frozen=True, slots=True)
class Interval:
    """Fires every `seconds`, at the multiples of `seconds` since the epoch (so every 15
    minutes means :00, :15, :30 and :45, whichever scheduler computes it).

    `seconds` is from FLOOR_INTERVAL (1 ms) to bounds.MAX_SECONDS (ten years), whatever the
    entry allows: fire times are counted as multiples since the epoch, and a shorter or longer
    interval overflows that count or the dates it gives (1e-300 s made every tick raise
    OverflowError)."""

    seconds: float

    def __post_init__(self) -> None:
        if not (isinstance(self.seconds, int | float) and math.isfinite(self.seconds)):
            raise ConfigurationError(
                f"an interval must be a number of seconds, not {self.seconds!r}"
            )
        if self.seconds <= 0:
            raise ConfigurationError(f"an interval must be positive, not {self.seconds!r} s")
        if self.seconds < FLOOR_INTERVAL:
            raise ConfigurationError(
                f"an interval of {self.seconds:g} s is below the shortest, {FLOOR_INTERVAL:g} s "
                "(1 ms), which holds even with allow_subsecond"
            )
        if self.seconds > MAX_SECONDS:
            raise ConfigurationError(
                f"an interval of {self.seconds:g} s is above the longest, {MAX_SECONDS:,} s "
                "(ten years); use a crontab for rare dates"
            )

    def next_after(self, after: datetime, zone: tzinfo) -> datetime:
        return _at((_ticks(after.timestamp(), self.seconds) + 1) * self.seconds)

    def fires_per_day(self) -> float:
        return 86400.0 / self.seconds

    def describe(self) -> str:
        return f"every {_duration(self.seconds)}"


Schedule = Interval | crontab | solar


def schedule(run_every: float | timedelta) -> Interval:
    """Celery's `celery.schedules.schedule(run_every=timedelta(...))`."""
    return Interval(_seconds(run_every, "run_every"))


def describe(sched: Schedule) -> str:
    """The schedule in words: "every 5 minutes", "at 08:00 on mon-fri"."""
    if isinstance(sched, Interval | solar):
        return sched.describe()
    return _describe_cron(sched)


@dataclass(frozen=True, slots=True)
class Due:
    """The fires of one entry between its last fire and now.

    count      fires due (after `base`, at or before now)
    latest     the newest of them, or None when none is due
    following  the first fire after now
    """

    count: int
    latest: datetime | None
    following: datetime


def _ticks(at: float, every: float) -> int:
    """How many whole intervals since the epoch `at` is (a hair of tolerance, so a time
    computed as k × interval counts as k despite float rounding)."""
    return math.floor(at / every + 1e-9)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(round(epoch, 6), timezone.utc)


def due_fires(sched: Schedule, base: float, now: float, zone: tzinfo) -> Due:
    """The fires after `base` (epoch seconds: the last fire, or the anchor) up to `now`."""
    start = datetime.fromtimestamp(base, timezone.utc)
    if isinstance(sched, Interval):
        last_k, now_k = _ticks(base, sched.seconds), _ticks(now, sched.seconds)
        count = max(0, now_k - last_k)
        latest = _at(now_k * sched.seconds) if count else None
        return Due(count, latest, _at((max(now_k, last_k) + 1) * sched.seconds))
    moment = datetime.fromtimestamp(now, timezone.utc)
    count, latest, fire = 0, None, sched.next_after(start, zone)
    while fire <= moment:
        count, latest = count + 1, fire
        if count >= _MAX_SCAN:  # years of a minutely cron: count the rest in one step
            rest = (now - fire.timestamp()) / 86400.0 * sched.fires_per_day()
            count += int(rest)
            fire = sched.next_after(moment - timedelta(days=1), zone)
            while fire <= moment:
                latest, fire = fire, sched.next_after(fire, zone)
            break
        fire = sched.next_after(fire, zone)
    return Due(count, latest, fire)


@dataclass(frozen=True, slots=True)
class Entry:
    """One periodic task: Celery's beat entry, plus the `missed` policy."""

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    expires: float | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    missed: Missed = Missed.SKIP
    allow_subsecond: bool = False

    def __post_init__(self) -> None:
        seconds = self.schedule.seconds if isinstance(self.schedule, Interval) else None
        if seconds is not None and seconds < MIN_INTERVAL and not self.allow_subsecond:
            raise ConfigurationError(
                f"schedule entry {self.name!r} fires every {seconds:g} s: an interval below one "
                f"second sends {86400 / seconds:,.0f} messages a day and is refused. Use 1 "
                "second or more, or add 'allow_subsecond': True to the entry (conveyor "
                "schedule add --allow-subsecond) if you mean it"
            )

    def identity(self) -> str:
        """What makes two entries the same schedule: task, arguments and schedule."""
        return json.dumps(
            [self.task, list(self.args), dict(self.kwargs), _schedule_json(self.schedule)],
            sort_keys=True,
        )

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "task": self.task,
            "schedule": _schedule_json(self.schedule),
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "missed": self.missed.value,
        }
        if self.allow_subsecond:
            data["allow_subsecond"] = True
        for key in ("queue", "priority", "expires", "time_limit", "soft_time_limit"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, name: str, text: str) -> Entry:
        data = json.loads(text)
        return cls(
            name=name,
            task=data["task"],
            schedule=_schedule_from_json(data["schedule"]),
            args=tuple(data.get("args", ())),
            kwargs=data.get("kwargs", {}),
            queue=data.get("queue"),
            priority=data.get("priority"),
            expires=data.get("expires"),
            time_limit=data.get("time_limit"),
            soft_time_limit=data.get("soft_time_limit"),
            missed=Missed(data.get("missed", Missed.SKIP.value)),
            allow_subsecond=data.get("allow_subsecond") is True,
        )

    def describe(self) -> str:
        return describe(self.schedule)


_ENTRY_KEYS = frozenset(
    {"task", "schedule", "args", "kwargs", "options", "missed", "relative", "allow_subsecond"}
)
_OPTION_KEYS = frozenset({"queue", "priority", "expires", "time_limit", "soft_time_limit"})
# kombu routing details: meaningless without AMQP exchanges, accepted so settings port as-is
_IGNORED_OPTIONS = frozenset({"exchange", "routing_key", "exchange_type"})


def parse_beat_schedule(value: object) -> list[Entry]:
    """Entries of a `beat_schedule` setting, checked: a malformed entry or two entries that
    are the same schedule raise ConfigurationError naming them."""
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"beat_schedule must be a dict of name -> entry, not {type(value).__name__}"
        )
    entries = [parse_entry(str(name), spec) for name, spec in value.items()]
    check_duplicates(entries)
    return entries


def parse_entry(name: str, spec: object) -> Entry:
    """One beat_schedule entry: {"task", "schedule", "args", "kwargs", "options", "missed",
    "allow_subsecond"}."""
    where = f"beat_schedule[{name!r}]"
    if not name.strip():
        raise ConfigurationError("a beat_schedule entry needs a non-empty name")
    if len(name) > MAX_ENTRY_NAME or not name.isprintable():
        raise ConfigurationError(
            f"{where}: an entry name must be printable (no control characters) and at most "
            f"{MAX_ENTRY_NAME} characters: its fires' task ids are made from it"
        )
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where} must be a dict with 'task' and 'schedule'")
    for key in spec:
        if key not in _ENTRY_KEYS:
            raise ConfigurationError(
                f"{where} has unknown key {key!r}{did_you_mean(str(key), _ENTRY_KEYS)}; "
                f"known keys: {', '.join(sorted(_ENTRY_KEYS))}"
            )
    for key in ("task", "schedule"):
        if key not in spec:
            raise ConfigurationError(f"{where} needs {key!r}")
    if not isinstance(spec["task"], str) or not spec["task"]:
        raise ConfigurationError(f"{where}['task'] must be a task name")
    options = _options(where, spec.get("options") or {})
    allow = spec.get("allow_subsecond", False)
    if not isinstance(allow, bool):
        raise ConfigurationError(f"{where}['allow_subsecond'] must be True or False")
    return Entry(
        name=name,
        task=spec["task"],
        schedule=to_schedule(spec["schedule"], f"{where}['schedule']"),
        args=tuple(_json_value(spec.get("args") or (), f"{where}['args']", list)),
        kwargs=_json_value(spec.get("kwargs") or {}, f"{where}['kwargs']", dict),
        missed=_missed(spec.get("missed", Missed.SKIP.value), where),
        allow_subsecond=allow,
        **options,
    )


def to_schedule(value: object, where: str) -> Schedule:
    """A schedule from seconds, a timedelta, an Interval, a crontab or a solar."""
    if isinstance(value, Interval | crontab | solar):
        return value
    if isinstance(value, timedelta | int | float) and not isinstance(value, bool):
        return Interval(_seconds(value, where))
    raise ConfigurationError(
        f"{where} must be seconds (300.0), a timedelta, crontab(...) or solar(...), not {value!r}"
    )


def check_duplicates(entries: list[Entry]) -> None:
    """Two entries with the same task, arguments and schedule are an error naming both."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        first = seen.setdefault(entry.identity(), entry)
        if first is not entry:
            raise ConfigurationError(duplicate_message(first, entry))


def duplicate_message(first: Entry, second: Entry) -> str:
    return (
        f"schedule entries {first.name!r} and {second.name!r} are the same: task "
        f"{first.task} with args {list(first.args)} kwargs {dict(first.kwargs)}, "
        f"{first.describe()}. Each would fire it, so it would run twice; keep one (a schedule "
        "is often defined both in celery.py and in settings.py)"
    )


def schedule_zone(timezone_name: str, enable_utc: bool) -> tzinfo:
    """The zone crontab fields are read in: the `timezone` setting; with `enable_utc=False`
    and no timezone set, the machine's local zone (Celery's rule)."""
    if not enable_utc and timezone_name == "UTC":
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else timezone.utc
    return ZoneInfo(timezone_name)


def fire_id(name: str, at: datetime) -> str:
    """The message id of entry `name`'s fire at `at`: the same in every scheduler, so a fire
    sent twice (by two leaders around a failover) is stored once."""
    stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return f"beat:{name}@{stamp}Z"


# -- helpers ----------------------------------------------------------------------------------
def _options(where: str, options: object) -> dict[str, Any]:
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"{where}['options'] must be a dict")
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in _IGNORED_OPTIONS:
            continue
        if key not in _OPTION_KEYS:
            raise ConfigurationError(
                f"{where}['options'] has unknown key {key!r}"
                f"{did_you_mean(str(key), _OPTION_KEYS)}; supported: "
                f"{', '.join(sorted(_OPTION_KEYS))} (exchange and routing_key are ignored)"
            )
        out[key] = _option(f"{where}['options'][{key!r}]", key, value)
    return out


def _option(where: str, key: str, value: Any) -> Any:
    if value is None:
        return None
    if key == "queue":
        return check_queue_name(value, where)
    if key == "priority":
        try:
            return check_priority(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return _seconds(value, where)


def _seconds(value: object, where: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ConfigurationError(f"{where} must be seconds or a timedelta, not {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"{where} must be positive, not {value!r}")
    return float(seconds)


def _json_value(value: Any, where: str, kind: type) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, kind):
        raise ConfigurationError(f"{where} must be a {kind.__name__}, not {value!r}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{where} must hold JSON values (the schedule is stored as JSON): {exc}"
        ) from None


def _missed(value: object, where: str) -> Missed:
    try:
        return Missed(value)
    except ValueError:
        raise ConfigurationError(
            f"{where}['missed']={value!r}: use 'skip' (default) or 'catch_up'"
        ) from None


def _schedule_json(sched: Schedule) -> dict[str, Any]:
    if isinstance(sched, Interval):
        return {"every": sched.seconds}
    if isinstance(sched, solar):
        return {"solar": [sched.event, sched.lat, sched.lon]}
    return {"cron": list(sched.spec)}


def _schedule_from_json(data: Mapping[str, Any]) -> Schedule:
    if "every" in data:
        return Interval(float(data["every"]))
    if "solar" in data:
        event, lat, lon = data["solar"]
        return solar(event, lat, lon)
    minute, hour, day_of_week, day_of_month, month_of_year = data["cron"]
    return crontab(minute, hour, day_of_week, day_of_month, month_of_year)


def cron_from_line(line: str) -> crontab:
    """A crontab from a classic five-field line: "minute hour day-of-month month day-of-week"
    (note the order differs from crontab()'s keyword order)."""
    fields = line.split()
    if len(fields) != 5:
        raise ConfigurationError(
            f"cron line {line!r} needs five fields: minute hour day-of-month month day-of-week "
            "(e.g. '*/15 8-18 * * mon-fri')"
        )
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(minute, hour, day_of_week, day_of_month, month_of_year)


_UNITS = ((86400.0, "day"), (3600.0, "hour"), (60.0, "minute"), (1.0, "second"))


def _duration(seconds: float) -> str:
    for size, unit in _UNITS:
        if seconds >= size and (seconds / size).is_integer():
            n = int(seconds / size)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds:g} seconds"


def _describe_cron(c: crontab) -> str:
    minute, hour, dow, dom, moy = c.spec
    if hour == "*" and minute == "*":
        when = "every minute"
    elif hour == "*" and minute.startswith("*/"):
        when = f"every {minute[2:]} minutes"
    elif hour == "*":
        when = f"every hour at minute {minute}"
    elif len(c.hour) * len(c.minute) <= 4:
        times = sorted(f"{h:02d}:{m:02d}" for h in c.hour for m in c.minute)
        when = f"at {', '.join(times)}"
    else:
        when = f"at minute {minute} of hour {hour}"
    days = []
    if dow != "*":
        days.append(f"on {dow}")
    if dom != "*":
        days.append(f"on day {dom} of the month")
    if moy != "*":
        days.append(f"in month {moy}")
    return " ".join([when, *days]) if days else (when if hour == "*" else f"daily {when}")
