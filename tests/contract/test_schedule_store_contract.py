"""The schedule-store contract (scheduler/stores/base.py), on every backend."""

from __future__ import annotations

from collections.abc import Callable

from conveyor.clock import FakeClock
from conveyor.scheduler.stores.base import ScheduleStore, Source

Make = Callable[[], ScheduleStore]


def test_sync_adds_changes_and_removes_only_configured_entries(
    make_schedules: Make, clock: FakeClock
) -> None:
    store = make_schedules()
    store.sync({"a": '{"v": 1}', "b": '{"v": 1}'})
    assert store.put("runtime", '{"v": 9}')
    first = {e.name: e for e in store.entries()}
    assert [e for e in first] == ["a", "b", "runtime"]
    assert first["a"].anchor == clock.now() and first["a"].last_fire is None
    assert (first["a"].source, first["runtime"].source) == (Source.CONFIG, Source.RUNTIME)
    clock.advance(10)
    store.sync({"a": '{"v": 2}', "c": '{"v": 1}'})
    after = {e.name: e for e in store.entries()}
    assert list(after) == ["a", "c", "runtime"]
    assert after["a"].definition == '{"v": 2}' and after["a"].anchor == first["a"].anchor
    assert after["c"].anchor == clock.now()
    assert after["runtime"] == first["runtime"]


def test_progress_and_pause_survive_a_sync(make_schedules: Make) -> None:
    store = make_schedules()
    store.sync({"a": "{}"})
    assert store.advance("a", None, 100.0, 1, 2)
    assert store.set_paused("a", True)
    store.sync({"a": '{"changed": true}'})
    (a,) = store.entries()
    assert (a.last_fire, a.fires, a.skipped, a.paused) == (100.0, 1, 2, True)
    assert store.set_paused("a", False) and not store.entries()[0].paused
    assert not store.set_paused("nope", True)


def test_configured_entries_cannot_be_overwritten_at_run_time(make_schedules: Make) -> None:
    store = make_schedules()
    store.sync({"a": "{}"})
    assert not store.put("a", '{"other": 1}')
    assert store.entries()[0].definition == "{}"
    assert store.put("b", "{}") and store.put("b", '{"v": 2}')
    assert {e.name: e.definition for e in store.entries()}["b"] == '{"v": 2}'
    assert store.remove("b") and not store.remove("b")


def test_advance_is_a_compare_and_set(make_schedules: Make) -> None:
    store = make_schedules()
    store.sync({"a": "{}"})
    other = make_schedules()  # another scheduler, same data
    assert store.advance("a", None, 1_800_000_000.125, 1, 0)
    assert not other.advance("a", None, 1_800_000_000.125, 1, 0)  # it read a stale value
    assert other.advance("a", 1_800_000_000.125, 1_800_000_010.125, 1, 3)
    assert not store.advance("a", 1_800_000_000.125, 1_800_000_020.0, 1, 0)
    (a,) = store.entries()
    assert (a.last_fire, a.fires, a.skipped) == (1_800_000_010.125, 2, 3)
    assert not store.advance("missing", None, 1.0, 1, 0)


def test_one_leader_at_a_time_until_its_lease_runs_out(
    make_schedules: Make, clock: FakeClock
) -> None:
    a, b = make_schedules(), make_schedules()
    assert a.leadership().holder is None
    first = a.lead("A", 10.0)
    assert first.held_by("A") and first.remaining == 10.0
    clock.advance(4)
    seen = b.lead("B", 10.0)
    assert seen.holder == "A" and seen.remaining == 6.0 and not seen.held_by("B")
    renewed = a.lead("A", 10.0)
    assert renewed.remaining == 10.0 and renewed.term == first.term
    clock.advance(10.5)
    taken = b.lead("B", 10.0)
    assert taken.held_by("B") and taken.term == first.term + 1
    assert a.lead("A", 10.0).holder == "B"


def test_resigning_frees_the_lease_at_once(make_schedules: Make) -> None:
    a, b = make_schedules(), make_schedules()
    a.lead("A", 10.0)
    b.resign("B")  # not the holder: nothing happens
    assert a.leadership().holder == "A"
    a.resign("A")
    assert b.leadership().holder is None
    assert b.lead("B", 10.0).held_by("B")
