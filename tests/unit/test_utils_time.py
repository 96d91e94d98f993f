"""conveyor.utils.time gives what celery.utils.time gives for the same input."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as fixed
from zoneinfo import ZoneInfo

import pytest

from conveyor.starting import command_args
from conveyor.utils.time import (
    delta_resolution,
    get_exponential_backoff_interval,
    humanize_seconds,
    is_naive,
    localize,
    make_aware,
    maybe_iso8601,
    maybe_make_aware,
    maybe_timedelta,
    rate,
    remaining,
    timezone,
    to_utc,
    weekday,
    yearmonth,
)

UTC = fixed.utc
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("secs", "kwargs", "expected"),
    [
        (60, {}, "1.00 minute"),
        (7200, {}, "2.00 hours"),
        (90, {"prefix": "in "}, "in 1.50 minutes"),
        (86400 * 3, {}, "3.00 days"),
        (1, {}, "1.00 second"),
        (0, {}, "now"),
        (0.5, {}, "now"),
        (0.5, {"microseconds": True}, "0.50 seconds"),
    ],
)
def test_humanize_seconds(secs: float, kwargs: dict[str, object], expected: str) -> None:
    assert humanize_seconds(secs, **kwargs) == expected  # type: ignore[arg-type]


def test_rates_days_and_months() -> None:
    assert rate("100/m") == pytest.approx(100 / 60) and rate("2/h") == pytest.approx(2 / 3600)
    assert rate("10") == 10.0 and rate("0.5/s") == 0.5 and rate(None) == 0 and rate(3) == 3
    with pytest.raises(ValueError, match="s, m or h"):
        rate("1/d")
    assert (weekday("sunday"), weekday("Mon"), yearmonth("january"), yearmonth("Dec")) == (
        0,
        1,
        1,
        12,
    )
    with pytest.raises(KeyError):
        weekday("someday")


def test_timedeltas_and_remaining() -> None:
    assert maybe_timedelta(30) == timedelta(seconds=30)
    assert maybe_timedelta(timedelta(hours=1)) == timedelta(hours=1)
    at = datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert delta_resolution(at, timedelta(days=2)) == datetime(2024, 5, 6, tzinfo=UTC)
    assert delta_resolution(at, timedelta(hours=2)) == datetime(2024, 5, 6, 7, tzinfo=UTC)
    assert delta_resolution(at, timedelta(seconds=5)) == at
    start = datetime(2024, 1, 1, tzinfo=UTC)
    now = datetime(2024, 1, 1, 0, 20, tzinfo=UTC)
    assert remaining(start, timedelta(minutes=30), now=now) == timedelta(minutes=10)
    assert remaining(start, timedelta(minutes=5), now=now) == timedelta(minutes=-15)


def test_zones_and_awareness() -> None:
    naive = datetime(2024, 1, 1, 12)
    assert is_naive(naive) and not is_naive(to_utc(naive))
    assert maybe_make_aware(naive) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    paris = maybe_make_aware(naive, "Europe/Paris")
    assert paris.hour == 13 and paris.utcoffset() == timedelta(hours=1)
    assert maybe_make_aware(paris) is paris
    assert timezone.get_timezone("Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    assert timezone.utc.utcoffset(None) == timedelta(0)
    assert timezone.to_local(naive, "Asia/Tokyo").hour == 21
    assert localize(datetime(2024, 1, 1, 12, tzinfo=UTC), NEW_YORK).hour == 7
    assert maybe_iso8601("2024-01-01T10:00:00+00:00") == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert maybe_iso8601(None) is None


def test_daylight_saving_edges() -> None:
    skipped = make_aware(datetime(2024, 3, 10, 2, 30), NEW_YORK)  # clocks went 2:00 -> 3:00
    assert (skipped.hour, skipped.minute, skipped.utcoffset()) == (3, 30, timedelta(hours=-4))
    repeated = make_aware(datetime(2024, 11, 3, 1, 30), NEW_YORK)  # 1:30 happened twice
    assert repeated.utcoffset() == timedelta(hours=-4)  # the earlier instant


def test_exponential_backoff() -> None:
    assert [get_exponential_backoff_interval(2, n, 10) for n in range(4)] == [2, 4, 8, 10]
    assert get_exponential_backoff_interval(0, 5, 10) == 0
    jittered = {get_exponential_backoff_interval(1, 3, 100, full_jitter=True) for _ in range(200)}
    assert jittered <= set(range(9)) and len(jittered) > 1


def test_start_arguments_drop_a_program_name() -> None:
    assert command_args(["worker", "-l", "INFO"]) == ["worker", "-l", "INFO"]
    assert command_args(["celery", "worker"]) == ["worker"]
    assert command_args(["tasks.py", "beat"]) == ["beat"]
    with pytest.raises(TypeError, match="list of arguments"):
        command_args("worker")
