"""The broker contract (brokers/base.py), checked on every backend."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from conveyor.brokers.base import (
    STREAM_START,
    Broker,
    Envelope,
    MessageState,
    Requeue,
    RevokeOutcome,
    StreamEntry,
    WorkerInfo,
    last_cursor,
)
from conveyor.clock import FakeClock

from ..rawstore import spoil
from .conftest import WINDOW

LEASE = 30.0


def env(
    mid: str,
    queue: str = "q",
    priority: int = 0,
    delay: float = 0.0,
    max_deliveries: int = 5,
    body: bytes | None = None,
) -> Envelope:
    return Envelope(
        mid, queue, body if body is not None else mid.encode(), priority, delay, max_deliveries
    )


def ids(deliveries: list) -> list[str]:  # type: ignore[type-arg]
    return [d.envelope.id for d in deliveries]


def test_enqueue_is_idempotent_by_id(broker: Broker) -> None:
    assert broker.enqueue([env("a"), env("b")]) == [True, True]
    assert broker.enqueue([env("a"), env("c")]) == [False, True]
    got = broker.reserve(["q"], 10, LEASE)
    assert sorted(ids(got)) == ["a", "b", "c"]


def test_duplicate_ids_inside_one_batch_store_once(broker: Broker) -> None:
    assert broker.enqueue([env("a"), env("a")]) == [True, False]
    assert len(broker.reserve(["q"], 10, LEASE)) == 1


def test_acked_id_stays_known_for_the_idempotency_window(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert broker.ack([d.lease]) == [True]
    assert broker.enqueue([env("a")]) == [False]
    clock.advance(WINDOW + 60)
    assert broker.enqueue([env("a")]) == [True]


def test_body_and_fields_round_trip(broker: Broker) -> None:
    broker.enqueue([Envelope("m", "q", b"\x00\xffbody", 7, 0.0, 3)])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.envelope == Envelope("m", "q", b"\x00\xffbody", 7, 0.0, 3)
    assert d.attempt == 1
    assert d.lease.message_id == "m"


def test_reserve_order_priority_then_due_time_then_enqueue_order(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("late-low", delay=5)])  # enqueued first, but due last
    clock.advance(1)
    broker.enqueue([env("low1"), env("high1", priority=9), env("low2"), env("mid", priority=5)])
    broker.enqueue([env("high2", priority=9)])
    clock.advance(10)
    got = broker.reserve(["q"], 10, LEASE)
    assert ids(got) == ["high1", "high2", "mid", "low1", "low2", "late-low"]


def test_queues_are_served_in_the_order_given(broker: Broker) -> None:
    broker.enqueue([env("a1", "a"), env("b9", "b", priority=9), env("a5", "a", priority=5)])
    broker.enqueue([env("c1", "c")])
    assert ids(broker.reserve(["a", "b"], 2, LEASE)) == ["a5", "a1"]
    assert ids(broker.reserve(["c", "b", "a"], 10, LEASE)) == ["c1", "b9"]


def test_queue_order_spills_over_within_one_reserve(broker: Broker) -> None:
    broker.enqueue([env("b1", "b"), env("a1", "a"), env("b2", "b", priority=2)])
    assert ids(broker.reserve(["a", "b", "a"], 10, LEASE)) == ["a1", "b2", "b1"]


def test_priority_runs_first_within_a_queue_with_ties_in_enqueue_order(broker: Broker) -> None:
    for i in range(4):
        broker.enqueue([env(f"p{i % 2 * 9}-{i}", priority=i % 2 * 9)])
    broker.enqueue([env("p5", priority=5)])
    got = [ids(broker.reserve(["q"], 1, LEASE)) for _ in range(5)]
    assert got == [["p9-1"], ["p9-3"], ["p5"], ["p0-0"], ["p0-2"]]


def test_reserve_respects_limit_and_queues(broker: Broker) -> None:
    broker.enqueue([env(f"m{i}") for i in range(5)] + [env("other", "elsewhere")])
    assert broker.reserve(["q"], 0, LEASE) == []
    assert len(broker.reserve(["q"], 2, LEASE)) == 2
    assert len(broker.reserve(["q"], 10, LEASE)) == 3
    assert broker.reserve(["q"], 10, LEASE) == []
    assert ids(broker.reserve(["elsewhere"], 10, LEASE)) == ["other"]


def test_delayed_messages_stay_in_storage_until_due(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("later", delay=60)])
    assert broker.reserve(["q"], 1, LEASE) == []
    (stats,) = broker.queue_stats()
    assert (stats.ready, stats.scheduled) == (0, 1)
    clock.advance(59)
    assert broker.reserve(["q"], 1, LEASE) == []
    clock.advance(1)
    assert ids(broker.reserve(["q"], 1, LEASE)) == ["later"]


def test_expired_lease_is_redelivered_with_next_attempt_and_new_token(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("m")])
    (first,) = broker.reserve(["q"], 1, LEASE)
    assert broker.reserve(["q"], 1, LEASE) == []
    clock.advance(LEASE + 1)
    (second,) = broker.reserve(["q"], 1, LEASE)
    assert second.attempt == 2
    assert second.lease.token > first.lease.token
    # The first holder is fenced off: none of its settlements take effect.
    assert broker.ack([first.lease]) == [False]
    assert broker.extend([first.lease], LEASE) == [None]
    assert broker.release(first.lease) is False
    assert broker.dead_letter(first.lease, "x") is False
    assert broker.ack([second.lease]) == [True]
    assert broker.queue_stats() == []


def test_a_lease_that_ran_out_cannot_be_used_even_before_regrant(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("m")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    clock.advance(LEASE + 1)
    assert broker.ack([d.lease]) == [False]


def test_extend_keeps_a_lease_alive_past_its_first_expiry(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("m")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    lease = d.lease
    for _ in range(5):
        clock.advance(LEASE * 0.6)
        (renewed,) = broker.extend([lease], LEASE)
        assert renewed is not None and renewed.token == lease.token
        assert renewed.expires_at == clock.now() + LEASE
        lease = renewed
        assert broker.reserve(["q"], 1, LEASE) == []
    assert broker.ack([lease]) == [True]


def test_extend_is_batched_and_reports_each_lease(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a"), env("b")])
    a, b = broker.reserve(["q"], 2, LEASE)
    broker.ack([a.lease])
    renewed = broker.extend([a.lease, b.lease], LEASE)
    assert renewed[0] is None and renewed[1] is not None


def test_confirm_says_which_leases_are_still_held(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a"), env("b"), env("c"), env("d")])
    a, b, c, d = broker.reserve(["q"], 4, LEASE)
    assert broker.confirm([]) == []
    broker.ack([c.lease])
    assert broker.release(d.lease)
    assert broker.confirm([a.lease, b.lease, c.lease, d.lease]) == [True, True, False, False]
    clock.advance(LEASE - 1)
    (renewed,) = broker.extend([b.lease], LEASE)
    clock.advance(2)  # a ran out (nobody has taken it yet); b was extended
    assert broker.confirm([a.lease, b.lease]) == [False, True]
    assert renewed is not None and broker.confirm([renewed]) == [True]
    assert broker.dead_letter(renewed, "x")
    assert broker.confirm([renewed]) == [False]


def test_confirm_is_read_only_and_fenced_by_token(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("m")])
    (first,) = broker.reserve(["q"], 1, LEASE)
    clock.advance(LEASE / 2)
    assert broker.confirm([first.lease]) == [True]
    clock.advance(LEASE / 2 + 1)  # confirming extended nothing
    assert broker.confirm([first.lease]) == [False]
    (second,) = broker.reserve(["q"], 1, LEASE)  # the same message, granted again
    assert broker.confirm([first.lease, second.lease]) == [False, True]
    assert broker.confirm([second.lease, first.lease]) == [True, False]
    # Only id and token count: a holder's own copy of the expiry is not trusted.
    forged = dataclasses.replace(first.lease, expires_at=clock.now() + 1000.0)
    assert broker.confirm([forged]) == [False]
    other = dataclasses.replace(second.lease, message_id="not-stored")
    assert broker.confirm([other]) == [False]
    assert broker.ack([second.lease]) == [True]
    assert broker.confirm([second.lease]) == [False]


def test_release_with_delay_and_new_body(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("m", max_deliveries=1)])
    for attempt in range(1, 4):  # releases are not lost deliveries: no dead-lettering
        (d,) = broker.reserve(["q"], 1, LEASE)
        assert d.attempt == attempt
        assert broker.release(d.lease, delay=10, body=f"v{attempt}".encode(), error="boom")
        assert broker.reserve(["q"], 1, LEASE) == []
        clock.advance(10)
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.envelope.body == b"v3"


def test_poison_message_is_dead_lettered_after_max_deliveries(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("poison", max_deliveries=2), env("fine")])
    for _ in range(2):
        got = broker.reserve(["q"], 10, LEASE)
        assert "poison" in ids(got)
        clock.advance(LEASE + 1)
    got = broker.reserve(["q"], 10, LEASE)
    assert ids(got) == ["fine"]
    (stats,) = broker.queue_stats()
    assert stats.dead == 1
    (dead,) = broker.list_messages("q", MessageState.DEAD)
    assert dead.envelope.id == "poison" and "max_deliveries" in (dead.reason or "")
    assert broker.redrive(["poison"]) == 1
    (again,) = broker.reserve(["q"], 10, LEASE)
    assert again.envelope.id == "poison" and again.attempt == 3


def test_dead_letter_keeps_the_reason(broker: Broker) -> None:
    broker.enqueue([env("m")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert broker.dead_letter(d.lease, "undecodable body")
    assert broker.reserve(["q"], 1, LEASE) == []
    (dead,) = broker.list_messages("q", MessageState.DEAD)
    assert dead.reason == "undecodable body"


def test_queue_stats_and_listing(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("r1"), env("r2", priority=3), env("s", delay=100), env("x", "other")])
    broker.enqueue([env("l")])
    leased = broker.reserve(["other"], 1, LEASE)
    assert ids(leased) == ["x"]
    stats = {s.queue: s for s in broker.queue_stats()}
    assert (stats["q"].ready, stats["q"].scheduled, stats["q"].leased) == (3, 1, 0)
    assert (stats["other"].ready, stats["other"].leased) == (0, 1)
    listed = broker.list_messages("q")
    assert [m.envelope.id for m in listed][:1] == ["r2"]
    assert {m.state for m in listed} == {MessageState.READY, MessageState.SCHEDULED}
    assert [m.envelope.id for m in broker.list_messages("q", MessageState.SCHEDULED)] == ["s"]
    assert len(broker.list_messages("q", limit=2)) == 2
    assert len(broker.list_messages("q", limit=2, offset=3)) == 1


def ages(broker: Broker) -> dict[str, float]:
    return {s.queue: s.oldest_ready_age for s in broker.queue_stats()}


def test_queue_stats_oldest_ready_age_is_the_longest_wait_of_a_ready_message(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("due-first", delay=1), env("later", "other", delay=100)])
    clock.advance(2)
    broker.enqueue([env("ready-low")])  # due 1 s after due-first
    clock.advance(3)
    broker.enqueue([env("new-high", priority=9), env("mid", priority=5)])
    # due-first has been due for 4 s (still scheduled in storage: nothing reserved yet)
    assert ages(broker) == {"q": pytest.approx(4.0, abs=1e-3), "other": 0.0}
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.envelope.id == "new-high"  # highest priority first, though the youngest
    assert ages(broker)["q"] == pytest.approx(4.0, abs=1e-3)
    got = broker.reserve(["q"], 2, LEASE)
    assert ids(got) == ["mid", "due-first"]
    # the head of a lower priority band counts, whatever waits in higher bands
    assert ages(broker)["q"] == pytest.approx(3.0, abs=1e-3)
    (low,) = broker.reserve(["q"], 1, LEASE)
    assert ages(broker)["q"] == 0.0  # everything leased: none waits
    clock.advance(2)
    assert broker.release(low.lease)  # due again from now
    clock.advance(1.5)
    assert ages(broker)["q"] == pytest.approx(1.5, abs=1e-3)
    clock.advance(100)  # 108.5 s after `later` was sent with a 100 s delay
    assert ages(broker)["other"] == pytest.approx(8.5, abs=1e-3)


def test_queue_stats_oldest_ready_age_ignores_dead_and_scheduled_messages(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("a"), env("b", delay=60)])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert broker.dead_letter(d.lease, "bad")
    clock.advance(30)
    (stats,) = broker.queue_stats()
    assert (stats.ready, stats.scheduled, stats.dead, stats.oldest_ready_age) == (0, 1, 1, 0.0)
    clock.advance(40)
    (stats,) = broker.queue_stats()
    assert (stats.ready, stats.scheduled) == (1, 0)
    assert stats.oldest_ready_age == pytest.approx(10.0, abs=1e-3)


def test_purge_deletes_waiting_messages_but_not_leased_ones(
    broker: Broker, clock: FakeClock
) -> None:
    broker.enqueue([env("a"), env("b", delay=50), env("c"), env("keep", "other")])
    (leased,) = broker.reserve(["q"], 1, LEASE)
    assert broker.purge(["q"]) == 2
    stats = {s.queue: s for s in broker.queue_stats()}
    assert stats["q"].leased == 1 and stats["q"].ready == 0 and stats["q"].scheduled == 0
    assert stats["other"].ready == 1
    assert broker.ack([leased.lease]) == [True]


def test_purge_can_include_dead_letters(broker: Broker) -> None:
    broker.enqueue([env("a"), env("b")])
    (d, _) = broker.reserve(["q"], 2, LEASE)
    broker.dead_letter(d.lease, "bad")
    assert broker.purge(["q"]) == 0
    assert broker.purge(["q"], include_dead=True) == 1


def test_tokens_grow_with_every_grant(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a"), env("b")])
    tokens = []
    for _ in range(3):
        for d in broker.reserve(["q"], 2, LEASE):
            tokens.append(d.lease.token)
            broker.release(d.lease)
    assert tokens == sorted(tokens) and len(set(tokens)) >= 3


def test_workers_publish_their_task_names(broker: Broker) -> None:
    info = WorkerInfo("w1@host", ("q",), ("proj.add", "proj.mul"), 123, 1.0, 2.0)
    broker.register_worker(info)
    broker.register_worker(WorkerInfo("w1@host", ("q",), ("proj.add",), 123, 1.0, 3.0))
    (stored,) = broker.workers()
    assert stored.task_names == ("proj.add",) and stored.heartbeat_at == 3.0


def test_reserve_waits_and_wakes_on_enqueue(broker: Broker) -> None:
    started = threading.Event()

    def produce() -> None:
        started.wait(5)
        broker.enqueue([env("woke")])

    t = threading.Thread(target=produce)
    t.start()
    started.set()
    begun = time.monotonic()
    got = broker.reserve(["q"], 1, LEASE, wait=10.0)
    t.join()
    assert ids(got) == ["woke"]
    assert time.monotonic() - begun < 5.0


def test_reserve_wait_returns_empty_when_nothing_arrives(broker: Broker) -> None:
    begun = time.monotonic()
    assert broker.reserve(["q"], 1, LEASE, wait=0.05) == []
    assert time.monotonic() - begun >= 0.04


def test_release_as_lost_counts_toward_max_deliveries(broker: Broker) -> None:
    broker.enqueue([env("p", max_deliveries=2)])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert broker.release(d.lease, error="child died", requeue=Requeue.LOST)
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.attempt == 2
    assert broker.release(d.lease, error="child died again", requeue=Requeue.LOST)
    assert broker.reserve(["q"], 1, LEASE) == []
    dead = broker.get_message("p")
    assert dead is not None and dead.state is MessageState.DEAD
    assert "max_deliveries" in (dead.reason or "")
    assert dead.last_error == "child died again"


def test_release_unstarted_keeps_the_attempt_number(broker: Broker) -> None:
    broker.enqueue([env("a")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert broker.release(d.lease, requeue=Requeue.UNSTARTED)
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.attempt == 1
    assert broker.release(d.lease, error="boom", requeue=Requeue.RETRY)
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert d.attempt == 2
    shown = broker.get_message("a")
    assert shown is not None and shown.last_error == "boom"


def test_begin_is_fenced_and_marks_the_next_delivery(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a"), env("b")])
    first = broker.reserve(["q"], 2, LEASE)
    assert [d.begun for d in first] == [False, False]
    assert broker.begin([first[0].lease]) == [True]
    clock.advance(LEASE + 1)
    assert broker.begin([first[1].lease]) == [False]  # lease ran out: must not start
    again = {d.envelope.id: d for d in broker.reserve(["q"], 2, LEASE)}
    assert again["a"].begun and not again["b"].begun


def test_throttle_hands_out_spaced_slots(broker: Broker, clock: FakeClock) -> None:
    assert broker.throttle("k", 0.5) == 0.0
    assert broker.throttle("k", 0.5) == 0.5
    assert broker.throttle("k", 0.5) == 1.0
    assert broker.throttle("other", 0.5) == 0.0
    clock.advance(10.0)
    assert broker.throttle("k", 0.5) == 0.0


def test_throttle_slots_are_distinct_across_threads(broker: Broker) -> None:
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(25):
            w = broker.throttle("k", 1.0)
            with lock:
                waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(100)]


def test_revoke_removes_waiting_messages_for_good(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("now"), env("later", delay=60.0)])
    (held,) = broker.reserve(["q"], 1, 600.0)
    revs = broker.revoke(["later", "never-sent"])
    assert [r.outcome for r in revs] == [RevokeOutcome.REMOVED, RevokeOutcome.UNKNOWN]
    assert all(r.token > held.lease.token for r in revs)
    assert broker.enqueue([env("later"), env("never-sent")]) == [False, False]
    clock.advance(120.0)
    assert broker.reserve(["q"], 10, LEASE) == []
    assert broker.get_message("later") is None


def test_revoke_flags_a_leased_message(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a")])
    (d,) = broker.reserve(["q"], 1, LEASE)
    assert not d.lease.revoked
    (rev,) = broker.revoke(["a"], terminate=True)
    assert rev.outcome is RevokeOutcome.FLAGGED
    (renewed,) = broker.extend([d.lease], LEASE)
    assert renewed is not None and renewed.revoked and renewed.terminate
    clock.advance(LEASE + 1)  # the holder died: the next delivery still says revoked
    (again,) = broker.reserve(["q"], 1, LEASE)
    assert again.lease.revoked
    assert broker.ack([again.lease]) == [True]
    assert broker.enqueue([env("a")]) == [False]


def test_purge_dead_by_age_and_queue(broker: Broker, clock: FakeClock) -> None:
    broker.enqueue([env("a"), env("b", queue="r"), env("c")])
    for d in broker.reserve(["q", "r"], 3, LEASE):
        if d.envelope.id == "c":
            continue
        assert broker.dead_letter(d.lease, "bad")
    clock.advance(100.0)
    assert broker.purge_dead(None, older_than=1000.0) == 0
    assert broker.purge_dead(["r"], older_than=50.0) == 1
    assert broker.purge_dead(None) == 1
    assert broker.get_message("a") is None
    assert broker.get_message("c") is not None


# -- unreadable storage: one bad delivery, never a failed batch --------------------------------
# (written straight into storage, as a foreign writer could; the memory broker holds envelopes
# as objects nothing else writes, so these run on SQLite, Redis and PostgreSQL)


@pytest.mark.parametrize("broker", ["postgres", "redis", "sqlite"], indirect=True)
def test_a_missing_body_is_one_defective_delivery_in_its_batch(broker: Broker) -> None:
    broker.enqueue([env("a"), env("b"), env("c")])
    spoil(broker, "b", "body", None)
    got = broker.reserve(["q"], 3, LEASE)
    assert ids(got) == ["a", "b", "c"]
    a, b, c = got
    assert (a.defect, c.defect) == (None, None) and (a.envelope.body, c.envelope.body) == (
        b"a",
        b"c",
    )
    assert b.defect is not None and "body" in b.defect and b.envelope.body == b""
    assert b.lease.message_id == "b" and b.attempt == 1
    assert broker.dead_letter(b.lease, b.defect)
    assert broker.ack([a.lease, c.lease]) == [True, True]
    dead = broker.get_message("b")
    assert dead is not None and dead.state is MessageState.DEAD and dead.reason == b.defect
    assert broker.reserve(["q"], 3, LEASE) == []


# PostgreSQL's typed columns cannot hold a priority that is not an integer
@pytest.mark.parametrize("broker", ["redis", "sqlite"], indirect=True)
def test_a_field_that_is_not_an_integer_is_a_defect_naming_it(broker: Broker) -> None:
    broker.enqueue([env("a"), env("b"), env("c", max_deliveries=3)])
    spoil(broker, "b", "priority", "high")
    spoil(broker, "c", "max_deliveries", "many")
    got = {d.envelope.id: d for d in broker.reserve(["q"], 3, LEASE)}
    assert sorted(got) == ["a", "b", "c"] and got["a"].defect is None
    assert "priority" in (got["b"].defect or "") and "'high'" in (got["b"].defect or "")
    assert "max_deliveries" in (got["c"].defect or "") and "'many'" in (got["c"].defect or "")
    assert got["b"].envelope.body == b"b"  # what could be read is still there
    for mid in ("b", "c"):
        assert broker.dead_letter(got[mid].lease, got[mid].defect or "")
        listed = broker.get_message(mid)  # the admin views still read the spoiled record
        assert listed is not None and listed.state is MessageState.DEAD
    assert broker.ack([got["a"].lease]) == [True]


# -- the event stream ---------------------------------------------------------------------------


def bodies(entries: list[StreamEntry]) -> list[bytes]:
    return [e.body for e in entries]


def test_events_are_read_in_publish_order_with_increasing_cursors(broker: Broker) -> None:
    assert broker.read_events(None, 10) == []
    assert broker.read_events(STREAM_START, 10) == []
    broker.publish_events([b"a", b"b"])
    broker.publish_events([])
    broker.publish_events([b"c"])
    got = broker.read_events(STREAM_START, 10)
    assert bodies(got) == [b"a", b"b", b"c"]
    cursors = [e.cursor for e in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3
    assert broker.read_events(cursors[-1], 10) == []


def test_event_cursors_page_through_the_stream(broker: Broker) -> None:
    broker.publish_events([str(i).encode() for i in range(7)])
    seen: list[bytes] = []
    cursor = STREAM_START
    while page := broker.read_events(cursor, 3):
        assert len(page) <= 3
        seen += bodies(page)
        cursor = page[-1].cursor
    assert seen == [str(i).encode() for i in range(7)]
    broker.publish_events([b"later"])
    assert bodies(broker.read_events(cursor, 3)) == [b"later"]


def test_reading_without_a_cursor_gives_the_newest_entries(broker: Broker) -> None:
    broker.publish_events([b"1", b"2", b"3", b"4"])
    assert bodies(broker.read_events(None, 2)) == [b"3", b"4"]
    assert bodies(broker.read_events(None, 10)) == [b"1", b"2", b"3", b"4"]
    assert broker.read_events(None, 0) == []
    tail = last_cursor(broker)
    assert broker.read_events(tail, 10) == []
    broker.publish_events([b"5"])
    assert bodies(broker.read_events(tail, 10)) == [b"5"]


def test_an_empty_stream_is_followed_from_stream_start(broker: Broker) -> None:
    tail = last_cursor(broker)
    assert tail == STREAM_START
    broker.publish_events([b"first"])
    assert bodies(broker.read_events(tail, 10)) == [b"first"]


def test_the_stream_keeps_only_the_newest_entries(broker: Broker) -> None:
    broker.event_stream_limit = 3  # type: ignore[attr-defined]
    broker.publish_events([b"1", b"2"])
    (oldest, _) = broker.read_events(STREAM_START, 10)
    broker.publish_events([b"3", b"4"])
    assert bodies(broker.read_events(STREAM_START, 10)) == [b"2", b"3", b"4"]
    broker.publish_events([b"5", b"6", b"7", b"8", b"9"])  # a batch larger than the limit
    assert bodies(broker.read_events(None, 10)) == [b"7", b"8", b"9"]
    # a cursor older than the trimmed tail reads from the oldest entry kept
    assert bodies(broker.read_events(oldest.cursor, 10)) == [b"7", b"8", b"9"]


def test_a_cursor_of_another_kind_is_refused(broker: Broker) -> None:
    with pytest.raises(ValueError, match="not an event stream cursor"):
        broker.read_events("yesterday", 10)


def test_concurrent_publishers_lose_nothing_and_keep_their_batches_whole(broker: Broker) -> None:
    def publish(name: str) -> None:
        for batch in range(20):
            broker.publish_events([f"{name}{batch}:{i}".encode() for i in range(5)])

    threads = [threading.Thread(target=publish, args=(n,)) for n in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [b.decode() for b in bodies(broker.read_events(STREAM_START, 1000))]
    assert sorted(got) == sorted(f"{n}{b}:{i}" for n in "xy" for b in range(20) for i in range(5))
    for start in range(0, len(got), 5):  # batches never interleave
        batch = got[start : start + 5]
        assert [x.split(":")[1] for x in batch] == ["0", "1", "2", "3", "4"]
        assert len({x.split(":")[0] for x in batch}) == 1
    for name in "xy":  # one publisher's batches keep their order
        mine = [int(x.split(":")[0][1:]) for x in got if x.startswith(name)]
        assert mine == sorted(mine)
