"""The scheduler loop driven tick by tick on a FakeClock: one leader fires, fires are never
doubled across failovers and restarts, missed fires follow the entry's policy, and the
schedule changes at run time."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor, crontab
from conveyor.clock import FakeClock
from conveyor.errors import ConfigurationError
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.states import TaskState
from conveyor.testing import solo_worker

START = 1_800_000_000.0  # a whole minute: 2027-01-15 08:00:00 UTC
LEASE = 3.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def make_app(clock: FakeClock, where: str = "memory://", **schedule: dict[str, object]) -> Conveyor:
    app = Conveyor("t", broker=where, backend=where, clock=clock, set_as_current=False)

    @app.task(name="poll")
    def poll(n: int = 0) -> int:
        return n

    @app.task(name="report")
    def report() -> str:
        return "done"

    app.conf.beat_schedule = schedule
    return app


def beat(app: Conveyor, holder: str, lease: float = LEASE, grace: float = 60.0) -> Beat:
    b = Beat(app, BeatOptions(lease=lease, max_interval=5.0, grace=grace, holder=holder))
    b.start()
    return b


def sent(app: Conveyor, queue: str = "celery") -> list[str]:
    return [m.envelope.id for m in app.broker.list_messages(queue, limit=100_000)]


def run_for(clock: FakeClock, seconds: float, *beats: Beat, step: float = 0.25) -> None:
    """Advance the clock in small steps, ticking every scheduler at each (a tick is cheap;
    the scheduler's own wait is checked separately)."""
    end = clock.now() + seconds
    while True:
        clock.advance(min(step, end - clock.now()))
        for b in beats:
            b.tick()
        if clock.now() >= end:
            return


def stamps(ids: list[str]) -> list[float]:
    return sorted(
        datetime.fromisoformat(i.split("@", 1)[1].replace("Z", "+00:00")).timestamp() for i in ids
    )


def test_one_fire_per_interval_with_a_deterministic_id(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 1.0, "args": [7]})
    b = beat(app, "a")
    run_for(clock, 10.0, b)
    ids = sent(app)
    assert stamps(ids) == [START + k for k in range(1, 11)]
    assert ids[0] == "beat:poll@2027-01-15T08:00:01.000Z"
    assert b.stats.sent == 10 and b.stats.skipped == 0


def test_the_scheduler_sleeps_until_the_next_fire(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 2.0})
    b = beat(app, "a", lease=30.0)
    assert b.tick() == pytest.approx(2.0)
    clock.advance(0.5)
    assert b.tick() == pytest.approx(1.5)


def test_only_the_leader_fires_and_another_takes_over_within_a_lease(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 1.0})
    a, b, c = beat(app, "a"), beat(app, "b"), beat(app, "c")
    run_for(clock, 10.0, a, b, c)
    assert a.stats.sent == 10 and b.stats.sent == c.stats.sent == 0
    died_at = clock.now()
    run_for(clock, 20.0, b, c)  # "a" died without resigning
    fires = stamps(sent(app))
    assert len(fires) == len(set(fires))
    gaps = [y - x for x, y in itertools.pairwise(fires)]
    assert max(gaps) <= LEASE + 1.0
    taken_over = min(f for f in fires if f > died_at)
    assert taken_over - died_at <= LEASE + 0.25  # one lease, plus this test's tick step
    assert b.stats.sent + c.stats.sent == len([f for f in fires if f > died_at])
    assert (b.leader.takeovers, c.leader.takeovers).count(1) == 1


def test_a_fire_sent_twice_around_a_failover_is_stored_once(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 1.0})
    a = beat(app, "a")
    run_for(clock, 3.0, a)
    before = sent(app)
    # "a" sent its fire and died before recording it: the next leader sends the same fire
    stored = app.schedule_store.entries()[0]
    app.schedule_store.advance("poll", stored.last_fire, stored.last_fire - 1.0, 0, 0)  # type: ignore[operator]
    app.schedule_store.resign("a")
    b = beat(app, "b")
    b.tick()
    assert b.stats.already_sent == 1 and b.stats.sent == 0
    assert sent(app) == before


def test_a_restart_neither_repeats_nor_skips_a_fire(clock: FakeClock, tmp_path: Path) -> None:
    where = f"sqlite:///{tmp_path / 'c.db'}"
    spec = {"task": "poll", "schedule": 5.0}
    first = make_app(clock, where, poll=spec)
    a = beat(first, "a")
    run_for(clock, 12.0, a)  # fires at +5 and +10
    first.close()  # killed: no resign, its lease runs on
    clock.advance(1.0)
    second = make_app(clock, where, poll=spec)
    b = beat(second, "b")
    run_for(clock, 12.0, b)  # takes over once the lease lapses: +15 (late), +20, +25
    assert stamps(sent(second)) == [START + s for s in (5, 10, 15, 20, 25)]
    entry = second.schedule_store.entries()[0]
    assert (entry.fires, entry.skipped) == (5, 0)
    second.close()


def test_a_restart_across_a_fire_sends_it_late_once(clock: FakeClock, tmp_path: Path) -> None:
    where = f"sqlite:///{tmp_path / 'c.db'}"
    spec = {"task": "poll", "schedule": 60.0}
    first = make_app(clock, where, poll=spec)
    a = beat(first, "a")
    run_for(clock, 50.0, a, step=1.0)
    a.leader.resign()  # a clean stop at +50
    first.close()
    clock.advance(20.0)  # the +60 fire came due while nothing ran
    second = make_app(clock, where, poll=spec)
    b = beat(second, "b")
    b.tick()
    assert stamps(sent(second)) == [START + 60]
    run_for(clock, 60.0, b, step=1.0)
    assert stamps(sent(second)) == [START + 60, START + 120]
    second.close()


@pytest.mark.parametrize(("missed", "expected_sent"), [("skip", []), ("catch_up", [3600.0])])
def test_fires_missed_while_everything_was_down(
    clock: FakeClock, missed: str, expected_sent: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 300.0, "missed": missed})
    b = beat(app, "a")
    b.tick()
    clock.advance(3600.0 + 100.0)  # down for an hour: 12 fires due, the newest 100 s ago
    b.tick()
    assert stamps(sent(app)) == [START + s for s in expected_sent]
    skipped = 12 - len(expected_sent)
    assert b.stats.skipped == skipped
    assert app.schedule_store.entries()[0].skipped == skipped
    assert f"skipped {skipped} fire(s)" in caplog.text
    run_for(clock, 300.0, b, step=5.0)  # and then back on schedule, at the multiples of 300 s
    assert stamps(sent(app))[-1] == START + 3900.0


def test_a_fire_expires_when_the_next_is_due(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 10.0})
    b = beat(app, "a")
    run_for(clock, 10.0, b)
    run_for(clock, 10.0, b)  # no worker ran the first fire before the second was due
    solo_worker(app).run_until_idle()
    assert sent(app) == []  # both consumed: one dropped, one run
    outcomes = app.results.get_many(
        ["beat:poll@2027-01-15T08:00:10.000Z", "beat:poll@2027-01-15T08:00:20.000Z"]
    )
    states = [outcomes[k].state for k in sorted(outcomes)]
    assert states == [TaskState.REVOKED, TaskState.SUCCESS]
    assert outcomes["beat:poll@2027-01-15T08:00:10.000Z"].reason == "expired"
    (view,) = app.schedules.list()
    assert view.expired == 1  # counted where `schedule list` shows it


def test_an_explicit_expires_counts_from_the_send(clock: FakeClock) -> None:
    spec = {"task": "poll", "schedule": 10.0, "options": {"expires": 25.0}}
    app = make_app(clock, poll=spec)
    b = beat(app, "a")
    run_for(clock, 20.0, b)  # two fires, both still fresh
    solo_worker(app).run_until_idle()
    outcomes = app.results.get_many(
        ["beat:poll@2027-01-15T08:00:10.000Z", "beat:poll@2027-01-15T08:00:20.000Z"]
    )
    assert {o.state for o in outcomes.values()} == {TaskState.SUCCESS}


@pytest.mark.parametrize(
    ("when", "fall_back"), [("2026-03-07T12:00:00", False), ("2026-10-31T12:00:00", True)]
)
def test_a_0230_job_runs_once_on_a_daylight_saving_day(when: str, fall_back: bool) -> None:
    ny = ZoneInfo("America/New_York")
    start = datetime.fromisoformat(when).replace(tzinfo=ny).timestamp()
    clock = FakeClock(start)
    app = make_app(clock, report={"task": "report", "schedule": crontab(minute=30, hour=2)})
    app.conf.timezone = "America/New_York"
    b = beat(app, "a", lease=600.0)
    run_for(clock, 86400.0, b, step=60.0)
    fires = [datetime.fromtimestamp(s, timezone.utc).astimezone(ny) for s in stamps(sent(app))]
    assert len(fires) == 1
    expected_hour = 2 if fall_back else 3  # 02:30 does not exist on the spring-forward day
    assert (fires[0].hour, fires[0].minute) == (expected_hour, 30)


def test_paused_entries_do_not_fire_and_resume_without_a_burst(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 1.0})
    b = beat(app, "a")
    run_for(clock, 3.0, b)
    app.schedules.pause("poll")
    run_for(clock, 10.0, b)
    assert len(sent(app)) == 3
    app.schedules.resume("poll")
    run_for(clock, 2.0, b)
    assert len(sent(app)) == 5 and b.stats.skipped == 0


def test_entries_added_changed_and_removed_at_run_time(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 60.0})
    b = beat(app, "a")
    app.schedules.add("fast", "report", 2.0, queue="reports")
    run_for(clock, 4.0, b)
    assert len(sent(app, "reports")) == 2
    app.schedules.add("fast", "report", 1.0, queue="reports")  # changed: now every second
    run_for(clock, 3.0, b)
    assert len(sent(app, "reports")) == 5
    app.schedules.remove("fast")
    run_for(clock, 3.0, b)
    assert len(sent(app, "reports")) == 5
    with pytest.raises(ConfigurationError, match="comes from beat_schedule"):
        app.schedules.remove("poll")
    with pytest.raises(ConfigurationError, match="comes from beat_schedule"):
        app.schedules.add("poll", "poll", 5.0)
    with pytest.raises(ConfigurationError, match="did you mean 'poll'"):
        app.schedules.pause("pol")
    with pytest.raises(ConfigurationError, match="unknown task 'nope'"):
        app.schedules.add("x", "nope", 5.0)
    with pytest.raises(ConfigurationError, match="'poll' and 'again' are the same"):
        app.schedules.add("again", "poll", 60.0)


def test_a_configured_entry_duplicating_a_stored_one_fails_at_start(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 60.0})
    beat(app, "a")
    app.schedules.add("poll-too", "report", 30.0)
    app.conf.beat_schedule = {
        "poll": {"task": "poll", "schedule": 60.0},
        "reports": {"task": "report", "schedule": 30.0},
    }
    with pytest.raises(ConfigurationError, match="'reports' and 'poll-too' are the same"):
        beat(app, "b")


def test_an_entry_for_an_unknown_task_fails_at_start(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "pol", "schedule": 60.0})
    with pytest.raises(ConfigurationError, match="schedule entry 'poll': unknown task 'pol'"):
        beat(app, "a")


def test_entries_removed_from_settings_leave_the_store(clock: FakeClock) -> None:
    app = make_app(
        clock, poll={"task": "poll", "schedule": 60.0}, old={"task": "report", "schedule": 5}
    )
    beat(app, "a")
    app.conf.beat_schedule = {"poll": {"task": "poll", "schedule": 60.0}}
    beat(app, "b")
    assert [e.name for e in app.schedule_store.entries()] == ["poll"]


def test_list_shows_next_fire_and_load(clock: FakeClock) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 120.0})
    b = beat(app, "a")
    run_for(clock, 240.0, b, step=2.0)
    solo_worker(app).run_until_idle()
    (view,) = app.schedules.list()
    assert view.fires_per_day == 720
    assert view.next_fire is not None and view.next_fire.timestamp() == START + 360
    assert view.avg_run is not None and view.worker_seconds_per_day == view.avg_run * 720
    assert view.stored.fires == 2 and view.stored.last_fire == START + 240


def test_an_entry_that_cannot_be_sent_does_not_stop_the_others(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(clock, poll={"task": "poll", "schedule": 1.0})
    b = beat(app, "a")
    # written by a process whose app had a task this one lacks
    app.schedule_store.put("alien", '{"task": "other.task", "schedule": {"every": 1.0}}')
    run_for(clock, 3.0, b)
    assert len(sent(app)) == 3
    assert caplog.text.count("schedule 'alien' cannot be sent: unknown task 'other.task'") == 1
