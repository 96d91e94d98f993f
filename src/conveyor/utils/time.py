"""The time helpers task modules import from Celery's `celery.utils.time`, under the same names
and with the same results: `from conveyor.utils.time import maybe_make_aware, humanize_seconds`.

Zones are `zoneinfo` zones. Where a wall time falls twice (clocks set back) the earlier instant
is taken; where it does not exist (clocks set forward) it is moved forward by the gap, as
Celery does. `timezone.local` is the system's zone as a fixed offset from UTC, read once.
"""

from __future__ import annotations

import random
import time as _time
from datetime import datetime, timedelta, tzinfo
from datetime import timezone as _fixed
from functools import cached_property
from zoneinfo import ZoneInfo

UTC = _fixed.utc

__all__ = [
    "adjust_timestamp",
    "delta_resolution",
    "get_exponential_backoff_interval",
    "humanize_seconds",
    "is_naive",
    "localize",
    "make_aware",
    "maybe_iso8601",
    "maybe_make_aware",
    "maybe_timedelta",
    "rate",
    "remaining",
    "timezone",
    "to_utc",
    "utcoffset",
    "weekday",
    "yearmonth",
]

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_PER_SECOND = {"s": 1.0, "m": 60.0, "h": 3600.0}
_UNITS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))


class _Zones:
    """Celery's `timezone` object: `timezone.utc`, `timezone.local`, `get_timezone(name)`."""

    @cached_property
    def utc(self) -> tzinfo:
        return ZoneInfo("UTC")

    @cached_property
    def local(self) -> tzinfo:
        """The system's zone (its current offset from UTC)."""
        found = datetime.now().astimezone().tzinfo
        return found if found is not None else self.utc

    def get_timezone(self, zone: str | tzinfo) -> tzinfo:
        """A zone by name ("Europe/Paris"), or the zone given."""
        return ZoneInfo(zone) if isinstance(zone, str) else zone

    def tz_or_local(self, zone: str | tzinfo | None = None) -> tzinfo:
        return self.local if zone is None else self.get_timezone(zone)

    def to_local(
        self, dt: datetime, local: str | tzinfo | None = None, orig: tzinfo | None = None
    ) -> datetime:
        """`dt` in zone `local` (the system's by default); a naive `dt` is read in `orig`
        (UTC by default)."""
        if is_naive(dt):
            dt = make_aware(dt, orig or self.utc)
        return localize(dt, self.tz_or_local(local))

    def to_system(self, dt: datetime) -> datetime:
        """`dt` in the system's zone."""
        return dt.astimezone()


timezone = _Zones()


def maybe_timedelta(delta: float | timedelta) -> timedelta:
    """Seconds as a timedelta; anything else unchanged."""
    if isinstance(delta, timedelta):
        return delta
    return timedelta(seconds=delta)


def delta_resolution(dt: datetime, delta: timedelta) -> datetime:
    """`dt` cut to the unit of `delta`: to the day when `delta` is a day or more, to the hour
    for an hour or more, to the minute for a minute or more; unchanged below that."""
    seconds = max(delta.total_seconds(), 0.0)
    if seconds >= 86400:
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if seconds >= 3600:
        return dt.replace(minute=0, second=0, microsecond=0)
    if seconds >= 60:
        return dt.replace(second=0, microsecond=0)
    return dt


def remaining(
    start: datetime, ends_in: timedelta, now: datetime | None = None, relative: bool = False
) -> timedelta:
    """Time left until `start + ends_in` (negative once past), counted in real time (UTC)
    whatever the zones; `relative` first cuts the end to the unit of `ends_in`."""
    now = now or datetime.now(UTC)
    end = start + ends_in
    if relative:
        end = delta_resolution(end, ends_in).replace(microsecond=0)
    return end.astimezone(UTC) - now.astimezone(UTC)


def rate(r: str | float | None) -> float:
    """A rate limit as calls per second: "100/m" is 1.666…, "2/h" 0.000555…, "10" is 10/s;
    empty or None is 0 (no limit). Numbers are returned as they are."""
    if not r:
        return 0
    if not isinstance(r, str):
        return r
    count, _, unit = r.partition("/")
    if (unit or "s") not in _PER_SECOND:
        raise ValueError(f"rate {r!r}: the unit after '/' must be s, m or h")
    return float(count) / _PER_SECOND[unit or "s"]


def weekday(name: str) -> int:
    """The day's number, Sunday 0 to Saturday 6: "sunday", "sun", "Mon"…"""
    try:
        return _DAYS.index(name[:3].lower())
    except ValueError:
        raise KeyError(name) from None


def yearmonth(name: str) -> int:
    """The month's number, January 1 to December 12: "january", "jan", "May"…"""
    try:
        return _MONTHS.index(name[:3].lower()) + 1
    except ValueError:
        raise KeyError(name) from None


def humanize_seconds(
    secs: float, prefix: str = "", sep: str = "", now: str = "now", microseconds: bool = False
) -> str:
    """Seconds in words, in the largest unit they fill, with two decimals: 60 is
    "1.00 minute", 7200 "2.00 hours", with `prefix` first ("in 1.00 minute"); less than a
    second is `now` (or "0.50 seconds" with `microseconds`)."""
    value = round(float(secs), 2)
    for unit, size in _UNITS:
        if value >= size:
            amount = value / size
            plural = "" if amount == 1 else "s"
            return f"{prefix}{sep}{amount:.2f} {unit}{plural}"
    if microseconds and value > 0:
        return f"{prefix}{sep}{value:.2f} seconds"
    return now


def maybe_iso8601(dt: datetime | str | None) -> datetime | None:
    """An ISO 8601 text as a datetime; a datetime unchanged; None (or "") as None."""
    if not dt:
        return None
    return dt if isinstance(dt, datetime) else datetime.fromisoformat(dt)


def is_naive(dt: datetime) -> bool:
    """True when `dt` has no zone (or one that gives no offset)."""
    return dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None


def make_aware(dt: datetime, tz: tzinfo) -> datetime:
    """`dt`'s wall time in zone `tz`: a repeated time is its earlier instant, a skipped time
    is moved forward by the gap."""
    aware = dt.replace(tzinfo=tz, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != aware.replace(tzinfo=None):  # in a gap
        return round_trip
    return aware


def localize(dt: datetime, tz: tzinfo) -> datetime:
    """`dt` in zone `tz`: a naive `dt` is read as a wall time there; an aware one in UTC is
    converted; an aware one in another zone is returned unchanged, as Celery does."""
    if is_naive(dt):
        dt = make_aware(dt, tz)
    if dt.utcoffset() == timedelta(0) and _is_utc(dt.tzinfo):
        dt = dt.astimezone(tz)
    return dt


def _is_utc(zone: tzinfo | None) -> bool:
    return zone is UTC or (isinstance(zone, ZoneInfo) and zone.key in ("UTC", "Etc/UTC"))


def to_utc(dt: datetime) -> datetime:
    """A naive `dt` read as UTC."""
    return make_aware(dt, timezone.utc)


def maybe_make_aware(
    dt: datetime, tz: str | tzinfo | None = None, naive_as_utc: bool = True
) -> datetime:
    """An aware `dt` unchanged; a naive one read as UTC (`naive_as_utc`, else as a wall time
    in `tz`) and given in `tz` (UTC by default)."""
    if not is_naive(dt):
        return dt
    zone = timezone.utc if tz is None else timezone.tz_or_local(tz)
    return localize(to_utc(dt) if naive_as_utc else dt, zone)


def utcoffset() -> int:
    """The system's offset from UTC in whole hours, west positive (the `time.timezone`
    sign), daylight saving time counted when in effect."""
    return int(_time.altzone if _time.localtime().tm_isdst else _time.timezone) // 3600


def adjust_timestamp(ts: float, offset: int) -> float:
    """A timestamp taken on a host `offset` hours from UTC (utcoffset's sign), adjusted to
    this host's."""
    return ts - (offset - utcoffset()) * 3600


def get_exponential_backoff_interval(
    factor: int, retries: int, maximum: int, full_jitter: bool = False
) -> int:
    """Seconds to wait before retry number `retries + 1`: `factor * 2**retries`, at most
    `maximum`; with `full_jitter`, a random whole number from 0 to that."""
    countdown: int = min(maximum, factor * (1 << retries))
    if full_jitter:
        countdown = random.randint(0, max(countdown, 0))
    return max(0, countdown)
