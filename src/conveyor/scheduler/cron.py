"""`crontab`: Celery's cron schedule, with its semantics, and the next fire time computed in the
app's time zone across daylight-saving changes. Pure: no clock, no I/O.

Fields take what Celery's take — `"*"`, numbers, lists `"1,15"`, ranges `"1-5"`, steps
`"*/15"` or `"8-18/2"`, an int, or an iterable of ints; `day_of_week` also takes names
(`"mon-fri"`, Sunday is 0 or 7) and `month_of_year` month names. As in Celery (and unlike
Vixie cron), `day_of_week` and `day_of_month` both restrict: a day must match both.

Time zones: fire times are wall-clock times in the zone given to `next_after`. On a
spring-forward day a time inside the gap (02:30 when clocks jump from 02:00 to 03:00) fires
once, at the instant it maps to (03:30), unless that instant is itself a scheduled time; on a
fall-back day a time inside the repeated hour fires once, at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from ..errors import ConfigurationError

_DAY_NAMES = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_MONTH_NAMES = {
    n: i + 1
    for i, n in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most each month has
_PART = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")
_SEARCH_YEARS = 400  # the Gregorian calendar repeats itself every 400 years
_LEAP_DAY_SHARE = 97 / 400  # February 29 comes in 97 years of 400


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None

    def parse(self, spec: object) -> frozenset[int]:
        if isinstance(spec, bool):
            raise self._error(spec, "a number, a cron string or a list of numbers")
        if isinstance(spec, int):
            return self._check(frozenset({self._normal(spec)}), spec)
        if isinstance(spec, str):
            values: set[int] = set()
            for part in spec.strip().lower().split(","):
                values |= self._part(part.strip(), spec)
            return self._check(frozenset(values), spec)
        if isinstance(spec, Iterable):
            found = set()
            for item in spec:
                if isinstance(item, bool) or not isinstance(item, int):
                    raise self._error(spec, "numbers only in a list")
                found.add(self._normal(item))
            return self._check(frozenset(found), spec)
        raise self._error(spec, "a number, a cron string or a list of numbers")

    def _part(self, part: str, spec: str) -> set[int]:
        match = _PART.match(part)
        if match is None:
            raise self._error(spec, "parts like 5, 1-5, */15 or 8-18/2")
        step = int(match["step"]) if match["step"] else 1
        if step < 1:
            raise self._error(spec, "a step of at least 1")
        text = match["range"]
        if text == "*":
            first, last = self.low, self.high
        elif "-" in text:
            a, b = text.split("-")
            first, last = self._value(a, spec), self._value(b, spec)
            if first > last:
                raise self._error(spec, f"a range that goes up ({a}-{b} goes down)")
        else:
            first = self._value(text, spec)
            last = self.high if match["step"] else first
        return {self._normal(v) for v in range(first, last + 1, step)}

    def _value(self, text: str, spec: str) -> int:
        if text.isdigit():
            value = int(text)
        elif self.names and text[:3] in self.names:
            value = self.names[text[:3]]
        else:
            raise self._error(spec, f"numbers from {self.low} to {self.high}")
        if not self.low <= value <= self.high + (1 if self.name == "day_of_week" else 0):
            raise self._error(spec, f"numbers from {self.low} to {self.high}")
        return value

    def _normal(self, value: int) -> int:
        if self.name == "day_of_week" and value == 7:
            return 0  # Sunday, as in cron
        if not self.low <= value <= self.high:
            raise self._error(value, f"numbers from {self.low} to {self.high}")
        return value

    def _check(self, values: frozenset[int], spec: object) -> frozenset[int]:
        if not values:
            raise self._error(spec, "at least one value")
        return values

    def _error(self, spec: object, wanted: str) -> ConfigurationError:
        return ConfigurationError(f"crontab {self.name}={spec!r}: expected {wanted}")


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOW = _Field("day_of_week", 0, 6, _DAY_NAMES)
_DOM = _Field("day_of_month", 1, 31)
_MONTH = _Field("month_of_year", 1, 12, _MONTH_NAMES)


@dataclass(frozen=True, slots=True, init=False)
class crontab:  # lower case: Celery's name, so `from celery.schedules import crontab` ports
    """A cron schedule: `crontab(minute="*/15", hour="8-18", day_of_week="mon-fri")`."""

    minute: frozenset[int]
    hour: frozenset[int]
    day_of_week: frozenset[int]
    day_of_month: frozenset[int]
    month_of_year: frozenset[int]
    spec: tuple[str, str, str, str, str]

    def __init__(
        self,
        minute: object = "*",
        hour: object = "*",
        day_of_week: object = "*",
        day_of_month: object = "*",
        month_of_year: object = "*",
    ) -> None:
        fields = (
            ("minute", _MINUTE.parse(minute)),
            ("hour", _HOUR.parse(hour)),
            ("day_of_week", _DOW.parse(day_of_week)),
            ("day_of_month", _DOM.parse(day_of_month)),
            ("month_of_year", _MONTH.parse(month_of_year)),
        )
        for name, values in fields:
            object.__setattr__(self, name, values)
        given = (minute, hour, day_of_week, day_of_month, month_of_year)
        object.__setattr__(self, "spec", tuple(_spec_text(v) for v in given))
        if not any(d <= _MONTH_DAYS[m - 1] for m in self.month_of_year for d in self.day_of_month):
            raise ConfigurationError(
                f"{self!r} never fires: no month in month_of_year has a day in day_of_month"
            )

    def __repr__(self) -> str:
        m, h, dow, dom, moy = self.spec
        return (
            f"crontab(minute={m!r}, hour={h!r}, day_of_week={dow!r}, day_of_month={dom!r}, "
            f"month_of_year={moy!r})"
        )

    def matches(self, local: datetime) -> bool:
        """Whether a wall-clock time (naive, in the schedule's zone) is a scheduled minute."""
        return local.minute in self.minute and local.hour in self.hour and self._day(local.date())

    def _day(self, day: date) -> bool:
        return (
            day.month in self.month_of_year
            and day.day in self.day_of_month
            and (day.weekday() + 1) % 7 in self.day_of_week
        )

    def next_after(self, after: datetime, zone: tzinfo) -> datetime:
        """The first fire strictly after `after` (an aware datetime), as an aware UTC datetime,
        the fields read as wall-clock times in `zone`."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        # Start a little before `after` in wall time: around a fall-back change the wall clock
        # runs an hour twice, and the first candidate may lie before `after`'s wall time.
        start = after.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
        for candidate in self._candidates(start):
            instant = self._instant(candidate, zone)
            if instant is not None and instant > after:
                return instant
        raise AssertionError("unreachable: the fields were checked to fire")  # pragma: no cover

    def _candidates(self, start: datetime) -> Iterator[datetime]:
        """Scheduled wall-clock minutes after `start`, in order."""
        hours, minutes = sorted(self.hour), sorted(self.minute)
        day = start.date()
        first = True
        for _ in range(366 * _SEARCH_YEARS):
            if self._day(day):
                for h in hours:
                    for m in minutes:
                        candidate = datetime.combine(day, time(h, m))
                        if not first or candidate > start:
                            yield candidate
            first = False
            day += timedelta(days=1)

    def _instant(self, local: datetime, zone: tzinfo) -> datetime | None:
        """When the wall-clock time `local` happens in `zone` (its first occurrence), or None
        when it falls in a spring-forward gap whose far side is already a scheduled time."""
        aware = local.replace(tzinfo=zone, fold=0)
        instant = aware.astimezone(timezone.utc)
        if instant.astimezone(zone).replace(tzinfo=None) == local:
            return instant
        shifted = instant.astimezone(zone).replace(tzinfo=None)
        return None if self.matches(shifted) else instant

    def fires_per_day(self) -> float:
        """Average fires a day over the 400-year Gregorian cycle (weekdays taken as evenly
        spread over dates, which they are to within a fraction of a percent)."""
        days_a_year = sum(
            _LEAP_DAY_SHARE if (m, d) == (2, 29) else 1.0
            for m in self.month_of_year
            for d in self.day_of_month
            if d <= _MONTH_DAYS[m - 1]
        )
        share_of_days = days_a_year / 365.2425 * len(self.day_of_week) / 7
        return share_of_days * len(self.hour) * len(self.minute)


def _spec_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Iterable):
        return ",".join(str(v) for v in sorted(value))
    return repr(value)
