"""Schedule intervals below one second are refused unless the entry allows them
(`allow_subsecond`), in `beat_schedule`, in `app.schedules.add` on every schedule store, and
in the scheduler when it reads an entry stored without the flag."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.clock import FakeClock
from conveyor.errors import ConfigurationError
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.scheduler.schedule import Entry, Interval, parse_entry, schedule

from .. import services

START = 1_800_000_000.0


@pytest.mark.parametrize("every", [0.001, 0.5, 0.999, timedelta(milliseconds=1)])
def test_a_subsecond_interval_is_refused_with_what_to_do(every: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_entry("fast", {"task": "t.poll", "schedule": every})
    message = str(raised.value)
    assert "interval below one second" in message and "'allow_subsecond': True" in message
    assert "schedule entry 'fast'" in message


def test_one_second_needs_no_flag_and_celerys_schedule_form_is_checked_too() -> None:
    assert parse_entry("s", {"task": "t.poll", "schedule": 1}).schedule == Interval(1.0)
    with pytest.raises(ConfigurationError, match="allow_subsecond"):
        parse_entry("s", {"task": "t.poll", "schedule": schedule(run_every=0.25)})


def test_allow_subsecond_accepts_it_and_is_stored_with_the_entry() -> None:
    entry = parse_entry("fast", {"task": "t.poll", "schedule": 0.5, "allow_subsecond": True})
    assert entry.allow_subsecond and json.loads(entry.to_json())["allow_subsecond"] is True
    assert Entry.from_json("fast", entry.to_json()) == entry
    plain = parse_entry("slow", {"task": "t.poll", "schedule": 60})
    assert "allow_subsecond" not in json.loads(plain.to_json())  # stored as before


@pytest.mark.parametrize("every", [1e-300, 5e-324, 0.0005, timedelta(microseconds=999)])
def test_allow_subsecond_keeps_a_floor_of_one_millisecond(every: object) -> None:
    """1e-300 s with the flag made every Beat.tick raise OverflowError."""
    with pytest.raises(ConfigurationError, match=r"below the shortest, 0\.001 s \(1 ms\)"):
        parse_entry("fast", {"task": "t.poll", "schedule": every, "allow_subsecond": True})
    entry = parse_entry("ms", {"task": "t.poll", "schedule": 0.001, "allow_subsecond": True})
    assert entry.schedule == Interval(0.001)


def test_an_interval_above_ten_years_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="above the longest, 315,360,000 s"):
        parse_entry("rare", {"task": "t.poll", "schedule": 1e12})
    assert parse_entry("rare", {"task": "t.poll", "schedule": 315_360_000}).schedule


def test_allow_subsecond_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="must be True or False"):
        parse_entry("fast", {"task": "t.poll", "schedule": 0.5, "allow_subsecond": "yes"})


def test_beat_schedule_setting_refuses_it() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="allow_subsecond"):
        app.conf.beat_schedule = {"fast": {"task": "t.poll", "schedule": 0.001}}


@pytest.fixture(params=services.BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conveyor]:
    tag = f"subsec_{uuid.uuid4().hex[:10]}"
    url = services.backend_url(request.param, tag, tmp_path)
    clock = FakeClock(START)
    app = Conveyor("t", broker=url, clock=clock, set_as_current=False)

    @app.task(name="t.poll")
    def poll() -> int:
        return 1

    yield app
    services.drop_keys(app.schedule_store)
    services.drop_keys(app.broker)
    app.close()


def test_schedules_add_refuses_it_unless_allowed_on_every_store(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="allow_subsecond"):
        app.schedules.add("fast", "t.poll", 0.5)
    assert app.schedules.list(load=False) == []
    app.schedules.add("fast", "t.poll", 0.5, allow_subsecond=True)
    (view,) = app.schedules.list(load=False)
    assert view.entry.allow_subsecond and view.entry.schedule == Interval(0.5)


def test_an_entry_stored_without_the_flag_does_not_fire(
    app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry an older release stored with a sub-second interval is reported and skipped."""
    app.schedule_store.put("old-fast", json.dumps({"task": "t.poll", "schedule": {"every": 0.01}}))
    beat = Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=60.0, holder="b"))
    beat.start()
    clock = app.clock
    assert isinstance(clock, FakeClock)
    for _ in range(8):
        clock.advance(0.25)
        beat.tick()
    assert app.broker.list_messages("celery") == []
    assert "old-fast" in caplog.text and "interval below one second" in caplog.text


def test_the_floor_holds_on_every_store_and_for_stored_entries(
    app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigurationError, match="below the shortest"):
        app.schedules.add("tiny", "t.poll", 1e-300, allow_subsecond=True)
    assert app.schedules.list(load=False) == []
    stored = {"task": "t.poll", "schedule": {"every": 1e-300}, "allow_subsecond": True}
    app.schedule_store.put("tiny", json.dumps(stored))  # as if written by hand or an old release
    beat = Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=60.0, holder="b"))
    beat.start()
    clock = app.clock
    assert isinstance(clock, FakeClock)
    for _ in range(4):  # no OverflowError: the entry is reported and skipped
        clock.advance(0.25)
        beat.tick()
    assert app.broker.list_messages("celery") == []
    assert "tiny" in caplog.text and "below the shortest" in caplog.text
