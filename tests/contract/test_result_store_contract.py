"""The result-store contract (results/base.py), checked on every backend."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable

from conveyor.clock import FakeClock
from conveyor.results.base import (
    CHORD_RECORD,
    GROUP_RECORD,
    MAX_COUNT,
    Cursor,
    ErrorInfo,
    HistoryQuery,
    Outcome,
    ResultStore,
    storable_text,
)
from conveyor.states import TaskState

from .conftest import TTL

MakeStore = Callable[[float | None], ResultStore]


def test_put_and_get_round_trip_every_field(make_store: MakeStore) -> None:
    store = make_store(TTL)
    full = Outcome(
        task_id="t1",
        state=TaskState.FAILURE,
        value=b'{"a":1}',
        error=ErrorInfo("ValueError", "bad", "Traceback...", "builtins"),
        task_name="p.f",
        queue="q",
        worker="w@h",
        attempt=2,
        retries=1,
        started_at=10.5,
        finished_at=11.25,
        reason="because",
        arguments=b'{"args":[1,"x"],"kwargs":{"k":true}}',
    )
    store.put([full])
    assert store.get("t1") == full
    assert store.get("missing") is None


def test_a_custom_state_round_trips_counts_as_running_and_is_listed_by_its_own_name(
    make_store: MakeStore,
) -> None:
    store = make_store(TTL)  # update_state(state="PROGRESS", meta=...) while the call runs
    progress = Outcome(
        "t", TaskState.STARTED, value=b'{"done":3}', custom_state="PROGRESS", token=4
    )
    assert store.put([progress, Outcome("u", TaskState.STARTED)]) == [True, True]
    got = store.get("t")
    assert got == progress and got.state_name == "PROGRESS" and not got.state.ready
    assert store.wait(["t"], 0.05) == {}  # not ready: a waiter keeps waiting
    listed = store.history(HistoryQuery(state=TaskState.STARTED)).entries
    assert [e.outcome.task_id for e in listed] == ["u"]  # the filter matches the stored name
    store.put([Outcome("t", TaskState.SUCCESS, value=b"1", token=4)])
    done = store.get("t")
    assert done is not None and done.custom_state is None and done.state_name == "SUCCESS"


def test_a_late_started_record_never_replaces_a_state_of_the_same_run(
    make_store: MakeStore,
) -> None:
    store = make_store(TTL)  # the task's update_state landed before the worker's STARTED
    progress = Outcome("t", TaskState.STARTED, value=b"1", custom_state="PROGRESS", token=4)
    assert store.put([progress]) == [True]
    assert store.put([Outcome("t", TaskState.STARTED, worker="w", token=4)]) == [False]
    assert store.get("t") == progress
    batch = [progress, Outcome("t", TaskState.STARTED, token=4)]  # also within one batch
    assert store.put([Outcome("u", TaskState.SUCCESS, value=b"2", token=4)]) == [True]
    assert store.put([Outcome("u", TaskState.STARTED, token=4)]) == [False]
    assert store.put(batch)[0] and store.get("t") == progress
    started = Outcome("t", TaskState.STARTED, token=5)  # a newer run starts over
    assert store.put([started]) == [True] and store.get("t") == started
    again = Outcome("t", TaskState.STARTED, worker="x", token=5)  # STARTED over STARTED
    assert store.put([again]) == [True] and store.get("t") == again


def test_last_write_wins(make_store: MakeStore) -> None:
    store = make_store(TTL)
    store.put([Outcome("t", TaskState.STARTED)])
    store.put([Outcome("t", TaskState.SUCCESS, value=b"1")])
    store.put([Outcome("t", TaskState.SUCCESS, value=b"2")])
    got = store.get("t")
    assert got is not None and got.value == b"2"


def test_one_batch_may_move_an_id_on_twice(make_store: MakeStore) -> None:
    store = make_store(TTL)  # a worker's batched writes: STARTED and SUCCESS together
    batch = [
        Outcome("t", TaskState.STARTED, token=3),
        Outcome("u", TaskState.STARTED, token=3),
        Outcome("t", TaskState.SUCCESS, value=b"1", token=3),
    ]
    assert store.put(batch) == [True, True, True]
    got = store.get("t")
    assert got is not None and got.state is TaskState.SUCCESS and got.value == b"1"
    assert store.get("u") is not None


def test_a_write_under_an_older_token_is_refused(make_store: MakeStore) -> None:
    store = make_store(TTL)
    assert store.put([Outcome("t", TaskState.STARTED, worker="new", token=7)]) == [True]
    assert store.put([Outcome("t", TaskState.SUCCESS, worker="stale", token=5)]) == [False]
    got = store.get("t")
    assert got is not None and got.worker == "new" and got.state is TaskState.STARTED
    assert store.put([Outcome("t", TaskState.SUCCESS, worker="new", token=7)]) == [True]
    assert store.put([Outcome("t", TaskState.REVOKED, token=9)]) == [True]
    got = store.get("t")
    assert got is not None and got.state is TaskState.REVOKED and got.token == 9


def test_an_expired_outcome_does_not_fence_a_new_write(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store(10.0)
    store.put([Outcome("t", TaskState.SUCCESS, token=50)])
    clock.advance(11.0)
    assert store.put([Outcome("t", TaskState.SUCCESS, value=b"2", token=1)]) == [True]
    got = store.get("t")
    assert got is not None and got.value == b"2"


def test_get_many_returns_only_known_ids(make_store: MakeStore) -> None:
    store = make_store(TTL)
    store.put([Outcome("a", TaskState.SUCCESS), Outcome("b", TaskState.RETRY)])
    assert set(store.get_many(["a", "b", "c"])) == {"a", "b"}
    assert store.get_many([]) == {}


def test_wait_returns_ready_outcomes_and_times_out_on_others(make_store: MakeStore) -> None:
    store = make_store(TTL)
    store.put([Outcome("done", TaskState.SUCCESS), Outcome("running", TaskState.STARTED)])
    begun = time.monotonic()
    got = store.wait(["done", "running"], timeout=0.05)
    assert set(got) == {"done"}
    assert time.monotonic() - begun >= 0.04


def test_wait_wakes_when_another_thread_finishes(make_store: MakeStore) -> None:
    store = make_store(TTL)
    go = threading.Event()

    def finish() -> None:
        go.wait(5)
        store.put([Outcome("t", TaskState.SUCCESS)])

    t = threading.Thread(target=finish)
    t.start()
    go.set()
    begun = time.monotonic()
    got = store.wait(["t"], timeout=10)
    t.join()
    assert set(got) == {"t"} and time.monotonic() - begun < 5


def test_forget(make_store: MakeStore) -> None:
    store = make_store(TTL)
    store.put([Outcome("t", TaskState.SUCCESS)])
    store.forget(["t", "never-existed"])
    assert store.get("t") is None


def test_outcomes_expire_after_ttl_and_are_purged(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(TTL)
    store.put([Outcome("old", TaskState.SUCCESS)])
    clock.advance(TTL / 2)
    store.put([Outcome("new", TaskState.SUCCESS)])
    clock.advance(TTL / 2)
    assert store.get("old") is None
    assert store.get("new") is not None
    assert store.purge_expired() == 1
    assert store.purge_expired() == 0


def test_no_ttl_means_no_expiry(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(None)
    store.put([Outcome("t", TaskState.SUCCESS)])
    clock.advance(10 * 365 * 86400)
    assert store.get("t") is not None
    assert store.purge_expired() == 0


def test_chord_joins_count_each_member_once(make_store: MakeStore) -> None:
    store = make_store(TTL)
    assert store.join_chord("c1", "m1") == 1
    assert store.join_chord("c1", "m2") == 2
    assert store.join_chord("c1", "m1") == 2  # a member that ran twice joins once
    assert store.join_chord("c2", "m1") == 1  # chords are separate
    assert shared(make_store, store).join_chord("c1", "m3") == 3  # seen by another process


def shared(make_store: MakeStore, store: ResultStore) -> ResultStore:
    """Another process's store on the same data (memory cannot be shared: the same one)."""
    return store if type(store).__name__ == "MemoryResultStore" else make_store(TTL)


def test_concurrent_joins_reach_the_full_count_exactly_once(make_store: MakeStore) -> None:
    first = make_store(TTL)
    stores = [first, *(shared(make_store, first) for _ in range(3))]
    seen: list[int] = []
    lock = threading.Lock()

    def join(store: ResultStore, first: int) -> None:
        for i in range(first, 40, 4):
            n = store.join_chord("big", f"m{i}")
            with lock:
                seen.append(n)

    threads = [threading.Thread(target=join, args=(s, k)) for k, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 41))  # every count seen once: one join completes it


def test_chord_joins_expire_with_outcomes(make_store: MakeStore, clock: FakeClock) -> None:
    store = make_store(TTL)
    store.join_chord("c", "m1")
    clock.advance(TTL + 1)
    store.purge_expired()
    if type(store).__name__ == "RedisResultStore":  # a native expiry, on the server's clock
        assert 0 < store._client.pttl(f"{store.prefix}:chord:c") <= TTL * 1000  # type: ignore[attr-defined]
    else:
        assert store.join_chord("c", "m2") == 1


def _walk(store: ResultStore, query: HistoryQuery) -> list[list[str]]:
    """Every page of `query`, as lists of task ids, following the `next` cursors."""
    pages: list[list[str]] = []
    before = query.before
    while True:
        page = store.history(dataclasses.replace(query, before=before))
        pages.append([e.outcome.task_id for e in page.entries])
        if page.next is None:
            return pages
        assert page.next == page.entries[-1].cursor
        before = page.next


def test_history_lists_newest_first_a_page_at_a_time(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store(TTL)
    for i in range(7):
        state = TaskState.FAILURE if i % 3 == 0 else TaskState.SUCCESS
        store.put([Outcome(f"t{i}", state, task_name="a" if i % 2 else "b")])
        clock.advance(1.0)
    store.put([Outcome("c", TaskState.SUCCESS, value=b"{}", task_name=CHORD_RECORD)])
    store.put([Outcome("g", TaskState.SUCCESS, value=b"[]", task_name=GROUP_RECORD)])
    assert _walk(store, HistoryQuery(limit=3)) == [["t6", "t5", "t4"], ["t3", "t2", "t1"], ["t0"]]
    assert _walk(store, HistoryQuery(limit=7)) == [["t6", "t5", "t4", "t3", "t2", "t1", "t0"]]
    assert _walk(store, HistoryQuery(state=TaskState.FAILURE)) == [["t6", "t3", "t0"]]
    assert _walk(store, HistoryQuery(task_name="a", limit=2)) == [["t5", "t3"], ["t1"]]
    since = clock.now() - 3.5  # t4 was written 3 s before the end
    assert _walk(store, HistoryQuery(since=since)) == [["t6", "t5", "t4"]]
    first = store.history(HistoryQuery(limit=1)).entries[0]
    assert first.outcome.task_name == "b" and first.stored_at == clock.now() - 1.0


def test_history_pages_are_exact_across_ties_and_new_writes(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store(TTL)
    store.put([Outcome(f"t{i}", TaskState.SUCCESS) for i in range(5)])  # one write time
    page = store.history(HistoryQuery(limit=2))
    assert [e.outcome.task_id for e in page.entries] == ["t4", "t3"]
    clock.advance(1.0)
    store.put([Outcome("late", TaskState.SUCCESS)])  # newer: not in the pages after this one
    rest = _walk(store, HistoryQuery(limit=2, before=page.next))
    assert rest[0] == ["t2", "t1"] and rest[-1][-1] == "t0"
    assert [tid for page_ids in rest for tid in page_ids] == ["t2", "t1", "t0"]


def _ids(store: ResultStore, query: HistoryQuery | None = None) -> list[str]:
    return [e.outcome.task_id for e in store.history(query or HistoryQuery()).entries]


def test_history_follows_rewrites_expiry_and_forget(
    make_store: MakeStore, clock: FakeClock
) -> None:
    store = make_store(TTL)
    for tid in ("a", "b", "c"):
        store.put([Outcome(tid, TaskState.STARTED)])
        clock.advance(1.0)
    store.put([Outcome("a", TaskState.SUCCESS)])  # rewritten: moves to the front
    assert _ids(store) == ["a", "c", "b"]
    assert _ids(store, HistoryQuery(state=TaskState.STARTED)) == ["c", "b"]
    store.forget(["c"])
    assert _ids(store) == ["a", "b"]
    clock.advance(TTL - 1.5)  # b (written at 1 s) expired; a (at 3 s) not yet
    assert _ids(store) == ["a"]
    store.purge_expired()
    assert _ids(store) == ["a"]
    clock.advance(10.0)
    assert _ids(store) == [] and store.history(HistoryQuery()).next is None


def test_history_cursor_reads_back_from_text() -> None:
    cursor = Cursor(1763712000.123456, "beat:poll@2026-11-21T08:00:00.000Z")
    assert Cursor.parse(str(cursor)) == cursor
    for bad in ("", "abc", "12.5", "x/y"):
        try:
            Cursor.parse(bad)
        except ValueError as exc:
            assert "history cursor" in str(exc)
        else:
            raise AssertionError(f"{bad!r} parsed")


def test_history_finds_sparse_matches_deep_in_a_large_store(make_store: MakeStore) -> None:
    store = make_store(TTL)
    batch = [Outcome(f"ok{i:04}", TaskState.SUCCESS, task_name="bulk") for i in range(1200)]
    for i in (5, 700, 1190):
        batch[i] = Outcome(f"bad{i:04}", TaskState.FAILURE, task_name="bulk")
    store.put(batch)
    page = store.history(HistoryQuery(state=TaskState.FAILURE, limit=2))
    assert [e.outcome.task_id for e in page.entries] == ["bad1190", "bad0700"]
    assert _walk(store, HistoryQuery(state=TaskState.FAILURE, limit=2, before=page.next)) == [
        ["bad0005"]
    ]
    assert len(store.history(HistoryQuery(task_name="bulk", limit=1000)).entries) == 1000


def test_text_and_counts_no_store_could_keep_are_stored_escaped_and_clamped(
    make_store: MakeStore,
) -> None:
    # An exception naming a file os.listdir gave back with an undecodable byte (b"\xff" ->
    # "\udcff"), a traceback holding a surrogate that stands for no byte and a NUL, a retry
    # count beyond 64 bits: each once failed every put of the batch it was in.
    name = os.fsdecode(b"report-\xff.csv")
    error = ErrorInfo("ValueError", f"cannot parse {name}", "Traceback \ud800 \x00 end")
    outcome = Outcome(
        "t", TaskState.FAILURE, error=error, reason=f"bad {name}", retries=2**70, attempt=-1
    )
    assert error.message == "cannot parse report-\\xff.csv"
    assert error.traceback == "Traceback \\ud800 \\x00 end"
    assert (outcome.reason, outcome.retries, outcome.attempt) == (
        "bad report-\\xff.csv",
        MAX_COUNT,
        0,
    )
    store = make_store(TTL)
    good = Outcome("u", TaskState.SUCCESS, value=b"1", task_name="caf\u00e9")
    named = Outcome("v", TaskState.STARTED, custom_state=f"PARSING {name}\x00")
    assert named.custom_state == "PARSING report-\\xff.csv\\x00"  # update_state's own name
    assert store.put([outcome, good, named]) == [True, True, True]
    assert store.get("t") == outcome and store.get("v") == named
    assert store.get("u") == good  # valid Unicode is kept as it is
    assert storable_text("plain") == "plain" and storable_text("naïve") == "naïve"
