"""crontab: Celery's field syntax and semantics, and next-fire times checked against a table of
cases — steps and ranges, month ends, leap years, day-of-week with day-of-month (both
restrict), and daylight-saving changes in New York (2026: spring forward on March 8 at 02:00,
fall back on November 1 at 02:00)."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from conveyor.errors import ConfigurationError
from conveyor.scheduler.cron import crontab

UTC = timezone.utc
NY = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo = NY, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


CASES = [
    # (schedule, after, zone, expected next fire)
    (crontab(), utc("2026-01-01T00:00:00"), UTC, utc("2026-01-01T00:01:00")),
    (crontab(minute="*/15"), utc("2026-01-01T10:07:30"), UTC, utc("2026-01-01T10:15:00")),
    (crontab(minute="*/15"), utc("2026-01-01T10:45:00"), UTC, utc("2026-01-01T11:00:00")),
    (crontab(minute=0, hour="8-18/2"), utc("2026-01-01T18:00:00"), UTC, utc("2026-01-02T08:00:00")),
    (crontab(minute="5,35", hour=9), utc("2026-01-01T09:05:00"), UTC, utc("2026-01-01T09:35:00")),
    # month ends: the 31st skips shorter months
    (crontab(0, 0, day_of_month=31), utc("2026-04-01T00:00:00"), UTC, utc("2026-05-31T00:00:00")),
    (
        crontab(0, 0, day_of_month="28-31"),
        utc("2026-02-28T00:00:00"),
        UTC,
        utc("2026-03-28T00:00:00"),
    ),
    # leap years: February 29 waits for 2028
    (
        crontab(0, 0, day_of_month=29, month_of_year=2),
        utc("2026-03-01T00:00:00"),
        UTC,
        utc("2028-02-29T00:00:00"),
    ),
    (
        crontab(0, 12, month_of_year="feb", day_of_month=29),
        utc("2100-01-01T00:00:00"),
        UTC,
        utc("2104-02-29T12:00:00"),
    ),  # 2100 is not a leap year
    # day of week and day of month both restrict (Celery), Sunday is 0 or 7
    (
        crontab(0, 0, day_of_week="fri", day_of_month=13),
        utc("2026-01-01T00:00:00"),
        UTC,
        utc("2026-02-13T00:00:00"),
    ),
    (
        crontab(0, 0, day_of_week="fri", day_of_month=13),
        utc("2026-03-14T00:00:00"),
        UTC,
        utc("2026-11-13T00:00:00"),
    ),
    (
        crontab(30, 7, day_of_week="mon-fri"),
        utc("2026-01-02T08:00:00"),
        UTC,
        utc("2026-01-05T07:30:00"),
    ),  # Friday after the fire: next is Monday
    (crontab(0, 0, day_of_week=7), utc("2026-01-01T00:00:00"), UTC, utc("2026-01-04T00:00:00")),
    (crontab(0, 0, day_of_week="sun"), utc("2026-01-04T00:00:00"), UTC, utc("2026-01-11T00:00:00")),
    # time zones: wall-clock 09:00 in New York is 14:00 UTC in winter, 13:00 in summer
    (crontab(0, 9), local("2026-01-10T09:00"), NY, utc("2026-01-11T14:00:00")),
    (crontab(0, 9), local("2026-07-10T09:00"), NY, utc("2026-07-11T13:00:00")),
    # spring forward: 02:30 does not exist on March 8; it fires once, at 03:30 EDT
    (crontab(30, 2), local("2026-03-07T02:30"), NY, local("2026-03-08T03:30")),
    (crontab(30, 2), local("2026-03-08T03:30"), NY, local("2026-03-09T02:30")),
    # ... and a schedule that also names 03:30 fires at 03:30 only once
    (crontab(30, "2,3"), local("2026-03-08T01:00"), NY, local("2026-03-08T03:30")),
    (crontab(30, "2,3"), local("2026-03-08T03:30"), NY, local("2026-03-09T02:30")),
    # fall back: 01:30 happens twice on November 1; it fires at the first only
    (crontab(30, 1), local("2026-10-31T01:30"), NY, local("2026-11-01T01:30", fold=0)),
    (crontab(30, 1), local("2026-11-01T01:30", fold=0), NY, local("2026-11-02T01:30")),
    (crontab(30, 1), local("2026-11-01T01:10", fold=1), NY, local("2026-11-02T01:30")),
    (crontab(30, 2), local("2026-11-01T00:00"), NY, local("2026-11-01T02:30")),  # once (EST)
]


@pytest.mark.parametrize(("schedule", "after", "zone", "expected"), CASES)
def test_next_fire(schedule: crontab, after: datetime, zone: ZoneInfo, expected: datetime) -> None:
    got = schedule.next_after(after, zone)
    # compared in UTC: Python never finds an ambiguous wall time equal across zones (PEP 495)
    assert got == expected.astimezone(UTC), f"{schedule!r} after {after}: {got.astimezone(zone)}"
    assert got.tzinfo is UTC


def test_a_daily_job_fires_once_a_day_through_both_changes() -> None:
    for schedule, day, count in (
        (crontab(30, 2), "2026-03-08", 1),
        (crontab(30, 1), "2026-11-01", 1),
        (crontab(minute="*/30"), "2026-03-08", 46),  # 23 hours
        (crontab(minute="*/30"), "2026-11-01", 48),  # 25 hours, the repeated hour once
    ):
        start = local(f"{day}T00:00") - (local(f"{day}T00:01") - local(f"{day}T00:00"))
        end = local(f"{day}T23:59")
        fires, at = [], start
        while (at := schedule.next_after(at, NY)) <= end:
            fires.append(at)
        assert len(fires) == count, (schedule, day, [f.astimezone(NY) for f in fires])
        assert fires == sorted(set(fires))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minute": 60}, "minute=60: expected numbers from 0 to 59"),
        ({"hour": "25"}, "hour='25': expected numbers from 0 to 23"),
        ({"minute": "*/0"}, "a step of at least 1"),
        ({"hour": "18-8"}, "a range that goes up"),
        ({"day_of_week": "funday"}, "day_of_week='funday'"),
        ({"minute": "1,,2"}, "parts like 5, 1-5, */15"),
        ({"minute": 1.5}, "a number, a cron string or a list of numbers"),
        ({"day_of_month": 30, "month_of_year": 2}, "never fires"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("*", r"\*")):
        crontab(**kwargs)


def test_fields_accept_celery_forms() -> None:
    schedule = crontab(minute=[0, 30], hour="9-17", day_of_week="mon-fri", month_of_year="jan-mar")
    assert schedule.minute == {0, 30} and schedule.hour == set(range(9, 18))
    assert schedule.day_of_week == {1, 2, 3, 4, 5} and schedule.month_of_year == {1, 2, 3}
    assert "day_of_week='mon-fri'" in repr(schedule)


def test_fires_per_day() -> None:
    assert crontab(minute="*/2").fires_per_day() == pytest.approx(720)  # the seed's poll
    assert crontab(0, 0).fires_per_day() == pytest.approx(1)
    assert crontab(0, 9, day_of_week="mon-fri").fires_per_day() == pytest.approx(5 / 7)
    assert crontab(0, 0, day_of_month=29, month_of_year=2).fires_per_day() == pytest.approx(
        97 / 400 / 365.2425
    )
