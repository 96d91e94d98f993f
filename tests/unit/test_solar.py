"""solar(event, lat, lon): Celery's sun-event schedule, computed with astral."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from conveyor import Conveyor
from conveyor.clock import FakeClock
from conveyor.errors import ConfigurationError
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.scheduler.schedule import Entry, describe, due_fires, parse_beat_schedule
from conveyor.scheduler.solar import EVENTS
from conveyor.schedules import solar

pytest.importorskip("astral")

UTC = timezone.utc
LONDON = (51.5074, -0.1278)
SOLSTICE = datetime(2026, 6, 21, tzinfo=UTC)


def test_sunrise_and_sunset_in_london_at_the_summer_solstice() -> None:
    # Published times for London on 21 June: sunrise 04:43 BST, sunset 21:21 BST.
    sunrise = solar("sunrise", *LONDON).next_after(SOLSTICE, UTC)
    sunset = solar("sunset", *LONDON).next_after(SOLSTICE, UTC)
    assert abs(sunrise - datetime(2026, 6, 21, 3, 43, tzinfo=UTC)) < timedelta(minutes=2)
    assert abs(sunset - datetime(2026, 6, 21, 20, 21, tzinfo=UTC)) < timedelta(minutes=2)


def test_the_events_of_a_day_come_in_celerys_order() -> None:
    equinox = datetime(2026, 3, 20, tzinfo=UTC)
    times = [solar(event, 45.0, 7.0).next_after(equinox, UTC) for event in EVENTS]
    assert times == sorted(times)
    assert times[-1] - times[0] < timedelta(days=1)


def test_fires_are_whole_seconds_strictly_after_the_given_time() -> None:
    s = solar("solar_noon", *LONDON)
    first = s.next_after(SOLSTICE, UTC)
    assert first.microsecond == 0
    assert s.next_after(first, UTC) - first == pytest.approx(
        timedelta(days=1), abs=timedelta(minutes=1)
    )


def test_a_day_without_the_event_has_no_fire() -> None:
    # Longyearbyen (78 N): the midnight sun; the first sunset after the solstice is in August.
    sunset = solar("sunset", 78.22, 15.65)
    assert sunset.at(date(2026, 6, 21)) is None
    assert sunset.next_after(SOLSTICE, UTC).month == 8


def test_every_event_happens_within_a_year_in_the_high_arctic() -> None:
    arctic = [solar(event, 78.22, 15.65).next_after(SOLSTICE, UTC) for event in EVENTS]
    assert all(t - SOLSTICE < timedelta(days=366) for t in arctic)


def test_an_event_missing_for_a_year_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solar, "at", lambda self, day: None)  # as if the sun never got there
    with pytest.raises(ConfigurationError, match="does not happen within a year"):
        solar("sunrise", *LONDON).next_after(SOLSTICE, UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("moonrise", 0, 0), "not one of dawn_astronomical, dawn_civil"),
        (("sunrise", 91, 0), "latitude 91 is outside -90..90"),
        (("sunrise", 0, -181), "longitude -181 is outside -180..180"),
        (("sunrise", "north", 0), "latitude must be a number of degrees"),
    ],
)
def test_a_bad_event_or_place_is_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        solar(*args)  # type: ignore[arg-type]


def test_without_astral_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "astral", None)
    with pytest.raises(ConfigurationError, match=r"conveyor\[solar\]"):
        solar("sunrise", *LONDON)


def test_a_beat_schedule_entry_is_stored_and_read_back() -> None:
    (entry,) = parse_beat_schedule(
        {"lights": {"task": "lights.on", "schedule": solar("sunset", *LONDON)}}
    )
    again = Entry.from_json(entry.name, entry.to_json())
    assert again == entry
    assert describe(again.schedule) == "at sunset (latitude 51.5074, longitude -0.1278)"


def test_due_fires_count_the_days_since_the_last_fire() -> None:
    s = solar("sunrise", *LONDON)
    base = SOLSTICE.timestamp()
    due = due_fires(s, base, base + 3 * 86400 - 1, UTC)
    assert due.count == 3
    assert due.latest == s.next_after(SOLSTICE + timedelta(days=2), UTC)


def test_the_scheduler_fires_a_solar_entry_at_the_event() -> None:
    clock = FakeClock(SOLSTICE.timestamp())
    app = Conveyor("t", broker="memory://", backend="memory://", clock=clock, set_as_current=False)
    app.task(name="lights.off")(lambda: None)
    sunrise = solar("sunrise", *LONDON)
    app.conf.beat_schedule = {"lights": {"task": "lights.off", "schedule": sunrise}}
    beat = Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=60.0, holder="a"))
    beat.start()
    beat.tick()
    fire = sunrise.next_after(SOLSTICE, UTC)
    clock.advance(fire.timestamp() - clock.now() - 1)
    beat.tick()
    queue = app.conf.settings.task_default_queue
    assert app.broker.list_messages(queue, limit=10) == []
    clock.advance(2)
    beat.tick()
    (sent,) = app.broker.list_messages(queue, limit=10)
    assert sent.envelope.id == f"beat:lights@{fire:%Y-%m-%dT%H:%M:%S}.000Z"
