"""beat_schedule entries in Celery's format: parsing, checks, duplicates, words, due fires."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor, crontab
from conveyor.errors import ConfigurationError
from conveyor.scheduler.schedule import (
    Entry,
    Interval,
    Missed,
    cron_from_line,
    describe,
    due_fires,
    fire_id,
    parse_beat_schedule,
    schedule,
)

UTC = timezone.utc


def test_celery_forms_of_a_schedule_parse() -> None:
    entries = parse_beat_schedule(
        {
            "cleanup": {"task": "data.cleanup", "schedule": 3600.0},
            "webhooks": {
                "task": "billing.webhooks",
                "schedule": timedelta(minutes=5),
                "args": (1, "a"),
                "kwargs": {"fast": True},
                "options": {"queue": "billing", "priority": 7, "expires": 120, "routing_key": "x"},
            },
            "report": {"task": "reports.daily", "schedule": crontab(minute=30, hour=2)},
            "legacy": {"task": "x.y", "schedule": schedule(run_every=timedelta(seconds=90))},
            "poll": {"task": "mail.poll", "schedule": 120, "missed": "catch_up"},
        }
    )
    by = {e.name: e for e in entries}
    assert by["cleanup"].schedule == Interval(3600.0)
    hook = by["webhooks"]
    assert (hook.schedule, hook.args, hook.kwargs) == (Interval(300.0), (1, "a"), {"fast": True})
    assert (hook.queue, hook.priority, hook.expires) == ("billing", 7, 120.0)
    assert by["legacy"].schedule == Interval(90.0)
    assert by["poll"].missed is Missed.CATCH_UP and by["cleanup"].missed is Missed.SKIP
    for e in entries:  # what the store keeps reads back as the same entry
        assert Entry.from_json(e.name, e.to_json()) == e


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"task": "t"}, "needs 'schedule'"),
        ({"schedule": 5}, "needs 'task'"),
        ({"task": "t", "schedule": "5m"}, "must be seconds"),
        ({"task": "t", "schedule": -1}, "must be positive"),
        ({"task": "t", "schedule": 5, "kwarg": {}}, "did you mean 'kwargs'"),
        ({"task": "t", "schedule": 5, "options": {"queues": "q"}}, "did you mean 'queue'"),
        ({"task": "t", "schedule": 5, "options": {"priority": 256}}, "priority"),
        ({"task": "t", "schedule": 5, "args": [object()]}, "JSON values"),
        ({"task": "t", "schedule": 5, "missed": "later"}, "'skip' (default) or 'catch_up'"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(spec: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigurationError, match="beat_schedule\\['poll'\\]") as err:
        parse_beat_schedule({"poll": spec})
    assert words in str(err.value)


def test_the_same_schedule_twice_is_an_error_naming_both() -> None:
    twice = {
        "poll-emails": {"task": "mail.poll", "schedule": 120.0},
        "email-polling": {"task": "mail.poll", "schedule": timedelta(minutes=2)},
    }
    with pytest.raises(ConfigurationError) as err:
        parse_beat_schedule(twice)
    assert "'poll-emails' and 'email-polling' are the same" in str(err.value)
    # other arguments or another schedule make it a different entry
    parse_beat_schedule({**twice, "email-polling": {"task": "mail.poll", "schedule": 300.0}})
    parse_beat_schedule(
        {**twice, "email-polling": {"task": "mail.poll", "schedule": 120.0, "args": [1]}}
    )


def test_the_setting_is_checked_when_set_and_accepts_celerys_old_name() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="beat_schedule\\['x'\\] needs 'schedule'"):
        app.conf.beat_schedule = {"x": {"task": "t"}}

    app.config_from_object(SimpleNamespace(CELERYBEAT_SCHEDULE={"x": {"task": "t", "schedule": 5}}))
    assert list(app.conf.beat_schedule) == ["x"]


@pytest.mark.parametrize(
    ("sched", "words"),
    [
        (Interval(300), "every 5 minutes"),
        (Interval(3600), "every hour"),
        (Interval(1.5), "every 1.5 seconds"),
        (crontab(), "every minute"),
        (crontab(minute="*/15"), "every 15 minutes"),
        (crontab(minute=30, hour=2), "daily at 02:30"),
        (crontab(minute=0, hour=8, day_of_week="mon-fri"), "at 08:00 on mon-fri"),
        (crontab(minute=0, hour=0, day_of_month=1), "at 00:00 on day 1 of the month"),
    ],
)
def test_schedules_in_words(sched: Interval | crontab, words: str) -> None:
    assert describe(sched) == words


def test_fires_per_day_shows_the_load_of_polling() -> None:
    assert Interval(120).fires_per_day() == 720  # the seed's "every 2 min = 720/day"
    assert Interval(300).fires_per_day() == 288
    assert crontab(minute=0, hour="*/8").fires_per_day() == 3


def test_cron_lines_use_the_classic_field_order() -> None:
    assert cron_from_line("*/15 8-18 * * 1-5") == crontab(
        minute="*/15", hour="8-18", day_of_week="1-5"
    )
    with pytest.raises(ConfigurationError, match="five fields"):
        cron_from_line("*/15 8-18 *")


def test_due_fires_of_an_interval_count_from_the_anchor() -> None:
    base = 1_000.0
    assert due_fires(Interval(10), base, 1_009.9, UTC).count == 0
    due = due_fires(Interval(10), base, 1_035.0, UTC)
    assert due.count == 3
    assert due.latest is not None and due.latest.timestamp() == 1_030.0
    assert due.following.timestamp() == 1_040.0


def test_due_fires_of_a_crontab_in_a_zone() -> None:
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, 12, 0, tzinfo=ny).timestamp()
    end = datetime(2026, 3, 9, 12, 0, tzinfo=ny).timestamp()
    due = due_fires(crontab(minute=30, hour=2), start, end, ny)
    # 02:30 on March 8 does not exist in New York: it fires once, at 03:30 EDT
    assert due.count == 2
    assert due.latest == datetime(2026, 3, 9, 2, 30, tzinfo=ny)


def test_fire_ids_are_the_same_everywhere_and_differ_by_time() -> None:
    at = datetime(2026, 11, 21, 11, 35, tzinfo=UTC)
    assert fire_id("webhooks", at) == "beat:webhooks@2026-11-21T11:35:00.000Z"
    assert fire_id("webhooks", at.astimezone(ZoneInfo("Asia/Tokyo"))) == fire_id("webhooks", at)
    assert fire_id("webhooks", at + timedelta(milliseconds=1)) != fire_id("webhooks", at)


def test_intervals_are_aligned_to_the_clock() -> None:
    quarter = Interval(900)
    at = datetime(2026, 11, 21, 11, 7, 13, tzinfo=UTC)
    assert quarter.next_after(at, UTC) == datetime(2026, 11, 21, 11, 15, tzinfo=UTC)
    due = due_fires(quarter, at.timestamp(), at.timestamp() + 3600, UTC)
    assert due.count == 4 and due.latest == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert due.following == datetime(2026, 11, 21, 12, 15, tzinfo=UTC)
