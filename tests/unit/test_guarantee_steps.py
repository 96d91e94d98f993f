"""Execution guarantees driven step by step on the memory broker with a FakeClock: at-most-once
runs, lost runs, fencing of a worker paused past its lease, revocation, rate limits, dead
letters on failure, time limits in the thread and solo pools."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from conveyor import Conveyor, SoftTimeLimitExceeded
from conveyor.brokers.base import Delivery, Envelope, Lease, MessageState
from conveyor.brokers.memory import MemoryBroker
from conveyor.clock import FakeClock
from conveyor.results.base import Outcome
from conveyor.results.memory import MemoryResultStore
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.leases import LeaseKeeper
from conveyor.worker.worker import Worker, default_options
from conveyor.worker.writer import Plan, Writer


def thread_worker(app: Conveyor, size: int = 1) -> Worker:
    w = Worker(app, default_options(app, name="threads@local", pool="threads", concurrency=size))
    w.groups[0].pool.start()
    return w


def test_at_most_once_call_runs_once_and_a_cut_off_run_is_recorded(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    runs: list[int] = []

    @mem_app.task(acks_late=False)
    def once(x: int) -> int:
        runs.append(x)
        return x

    ok = once.delay(1)
    assert solo_worker(mem_app).run_until_idle() == 1
    assert ok.get(timeout=1) == 1
    cut = once.delay(2)
    (d,) = mem_app.broker.reserve(["celery"], 1, 30.0)  # a worker took it and began…
    assert mem_app.broker.begin([d.lease]) == [True]
    fake_clock.advance(31.0)  # …and died
    solo_worker(mem_app).run_until_idle()
    assert runs == [1]  # never run a second time
    o = cut.outcome
    assert o is not None and o.state is TaskState.FAILURE and o.reason == "worker lost"
    assert o.error is not None and o.error.type == "WorkerLostError"
    assert mem_app.broker.queue_stats() == []


def test_a_lost_run_is_redelivered_at_once_then_dead_lettered(mem_app: Conveyor) -> None:
    @mem_app.task(max_deliveries=2)
    def leave() -> None:
        raise SystemExit(3)  # stands for a process that died mid-task

    res = leave.delay()
    w = thread_worker(mem_app)
    w.run_until_idle()
    (dead,) = mem_app.broker.list_messages("celery", MessageState.DEAD)
    assert dead.envelope.id == res.id and dead.attempts == 2
    assert "run lost 2 times" in (dead.reason or "") and "SystemExit" in (dead.last_error or "")
    w.groups[0].pool.stop(1.0)


def test_reject_on_worker_lost_false_records_worker_lost(mem_app: Conveyor) -> None:
    @mem_app.task(reject_on_worker_lost=False)
    def leave() -> None:
        raise SystemExit(3)

    res = leave.delay()
    w = thread_worker(mem_app)
    w.run_until_idle()
    o = res.outcome
    assert o is not None and o.state is TaskState.FAILURE and o.error is not None
    assert o.error.type == "WorkerLostError" and o.attempt == 1
    assert mem_app.broker.queue_stats() == []
    w.groups[0].pool.stop(1.0)


class ReplyInFlight(MemoryBroker):
    """The memory broker, with a hook that runs after `extend` has decided and before its
    reply reaches the caller: what happens while a renewal is on its way back."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.meanwhile: Callable[[], None] | None = None

    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        renewed = super().extend(leases, lease_for)
        hook, self.meanwhile = self.meanwhile, None
        if hook is not None:
            hook()
        return renewed


def test_a_renewal_of_the_old_lease_never_marks_the_new_lease_of_its_message_lost(
    fake_clock: FakeClock,
) -> None:
    broker = ReplyInFlight(fake_clock)
    keeper = LeaseKeeper(broker, 30.0)
    broker.enqueue([Envelope("m", "celery", b"{}")])
    (first,) = broker.reserve(["celery"], 1, 30.0)
    keeper.hold(first.lease)
    fake_clock.advance(31.0)  # the worker was paused past its lease
    regranted: list[Delivery] = []

    def own_message_comes_back() -> None:  # while the renewal's "lost" is on its way
        regranted.extend(broker.reserve(["celery"], 1, 30.0))
        keeper.hold(regranted[0].lease)

    broker.meanwhile = own_message_comes_back
    assert keeper.renew_once() == [first.lease]
    (second,) = regranted
    assert second.lease.token > first.lease.token and second.attempt == 2
    assert keeper.held() == 1  # the new lease is still held…
    fake_clock.advance(20.0)
    assert keeper.renew_once() == []  # …and renewed
    fake_clock.advance(20.0)  # past the new lease's first expiry: the renewal kept it
    assert keeper.drop(first.lease) is False  # the stale run is not settled
    assert keeper.drop(second.lease) is True  # the new run is
    assert broker.ack([second.lease]) == [True]


def test_settling_the_old_lease_leaves_the_new_lease_of_its_message_renewed(
    fake_clock: FakeClock,
) -> None:
    broker = MemoryBroker(fake_clock)
    keeper = LeaseKeeper(broker, 30.0)
    broker.enqueue([Envelope("m", "celery", b"{}")])
    (first,) = broker.reserve(["celery"], 1, 30.0)
    keeper.hold(first.lease)
    fake_clock.advance(31.0)  # paused past the lease; no renewal has run since
    (second,) = broker.reserve(["celery"], 1, 30.0)
    keeper.hold(second.lease)
    assert keeper.held() == 2
    keeper.drop(first.lease)  # the old run finished first
    assert keeper.held() == 1
    fake_clock.advance(20.0)
    assert keeper.renew_once() == []
    fake_clock.advance(20.0)
    assert broker.confirm([first.lease, second.lease]) == [False, True]


def record_puts(app: Conveyor) -> list[tuple[TaskState, int]]:
    """Every outcome the app's result store accepts from now on, as (state, token), in order."""
    store = app.results
    accepted: list[tuple[TaskState, int]] = []
    put = store.put

    def recording(outcomes: Sequence[Outcome]) -> list[bool]:
        stored = put(outcomes)
        accepted.extend((o.state, o.token) for o, ok in zip(outcomes, stored, strict=True) if ok)
        return stored

    store.put = recording  # type: ignore[method-assign]
    return accepted


def test_a_worker_paused_past_its_lease_writes_one_outcome_when_its_message_comes_back(
    mem_app: Conveyor, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    gate, runs = threading.Event(), list[int]()

    @mem_app.task
    def paused() -> int:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            assert gate.wait(30)
        return len(runs)

    mem_app.conf.task_track_started = True  # the fenced STARTED write is part of the story
    puts = record_puts(mem_app)
    res = paused.delay()
    w = thread_worker(mem_app)  # the only worker
    w.step()  # reserved, STARTED stored, running
    fake_clock.advance(31.0)  # the worker is paused past its lease, no renewal ran…
    gate.set()  # …then resumes: the first run ends
    with caplog.at_level(logging.WARNING, "conveyor.worker"):
        w.run_until_idle()
    assert runs == [1, 2]  # its own message came back to it and ran a second time, no more
    assert res.get(timeout=1) == 2
    (first, second) = sorted({token for _, token in puts})
    assert puts == [
        (TaskState.STARTED, first),
        (TaskState.STARTED, second),
        (TaskState.SUCCESS, second),
    ]  # the first run's SUCCESS was never written
    assert f"outcome of {res.id} not recorded: lease lost" in caplog.text
    assert "ack refused" not in caplog.text
    assert mem_app.broker.queue_stats() == []
    w.groups[0].pool.stop(1.0)


def test_the_writer_drops_every_write_of_a_lease_no_longer_held(fake_clock: FakeClock) -> None:
    broker, store = MemoryBroker(fake_clock), MemoryResultStore(None, fake_clock)
    broker.enqueue([Envelope("old", "celery", b"{}"), Envelope("ignored", "celery", b"{}")])
    old, ignored = broker.reserve(["celery"], 2, 30.0)
    fake_clock.advance(31.0)  # both leases ran out
    broker.enqueue([Envelope("live", "other", b"{}")])
    (live,) = broker.reserve(["other"], 1, 30.0)
    store.put([Outcome("ignored", TaskState.STARTED, token=ignored.lease.token)])
    followed: list[str] = []
    plan = Plan(
        puts=[
            Outcome("old", TaskState.SUCCESS, token=old.lease.token),
            Outcome("live", TaskState.SUCCESS, token=live.lease.token),
            Outcome("record", TaskState.SUCCESS, task_name="conveyor.chord"),  # no lease
        ],
        forgets=["ignored"],
        acks=[old.lease, ignored.lease, live.lease],
        followups=[
            (old.lease, lambda: followed.append("old")),
            (live.lease, lambda: followed.append("live")),
        ],
    )
    Writer(broker, store).apply(plan)
    assert store.get("old") is None
    assert store.get("ignored") is not None  # its forget was a write of a lost lease too
    assert [store.get(i) is not None for i in ("live", "record")] == [True, True]
    assert followed == ["live"]
    assert broker.list_messages("other") == []  # the live lease was acknowledged
    assert broker.confirm([old.lease, ignored.lease]) == [False, False]
    assert len(broker.reserve(["celery"], 2, 30.0)) == 2  # both are delivered again


def test_revoked_waiting_call_never_runs_even_when_sent_again(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    runs: list[str] = []

    @mem_app.task
    def f() -> None:
        runs.append("ran")

    later = f.apply_async(countdown=60)
    mem_app.control.revoke(later.id)
    assert later.state is TaskState.REVOKED
    f.apply_async(task_id=later.id)  # a producer retrying the send
    fake_clock.advance(61.0)
    solo_worker(mem_app).run_until_idle()
    assert runs == [] and later.state is TaskState.REVOKED


def test_revoke_reaches_a_reserved_call_before_it_starts(mem_app: Conveyor) -> None:
    runs: list[int] = []

    @mem_app.task
    def f(x: int) -> None:
        runs.append(x)

    first, second = f.delay(1), f.delay(2)
    w = Worker(mem_app, default_options(mem_app, name="w", prefetch_multiplier=2))
    w.groups[0].reserve(0.0)  # both reserved, none started
    mem_app.control.revoke(second.id)
    w.keeper.renew_once()  # the renewal carries the revocation
    w.run_until_idle()
    assert runs == [1]
    assert first.state is TaskState.SUCCESS and second.state is TaskState.REVOKED


def test_a_revocation_reaches_the_grant_it_was_found_on_not_an_older_copy(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    """After a pause past its lease a worker holds its own message twice: the old grant (lost)
    and the new one. The revocation, reported on the new grant's renewal, ends that grant."""

    @mem_app.task
    def f(x: int) -> None: ...

    res = f.delay(1)
    w = Worker(mem_app, default_options(mem_app, name="w", prefetch_multiplier=2))
    group = w.groups[0]
    group.reserve(0.0)
    fake_clock.advance(w.options.lease_for + 1)  # the pause: the lease runs out
    group.reserve(0.0)  # the same message again, under a new token
    old, new = (item.lease for item in group.backlog)
    assert old.message_id == new.message_id == res.id and old.token < new.token
    assert not group.holds(dataclasses.replace(new, token=new.token + 1))
    mem_app.control.revoke(res.id)
    assert w.keeper.renew_once() == [old]  # the old grant is lost, the new one flagged
    group.apply_revocations()
    assert [item.lease.token for item in group.backlog] == [old.token]
    outcome = res.outcome
    assert outcome is not None and outcome.state is TaskState.REVOKED
    assert outcome.token == new.token and mem_app.broker.queue_stats() == []


def test_terminate_kills_a_running_call_in_the_thread_pool(mem_app: Conveyor) -> None:
    started, release = threading.Event(), threading.Event()

    @mem_app.task
    def hang() -> None:
        started.set()
        while not release.is_set():
            time.sleep(0.01)

    res = hang.delay()
    w = thread_worker(mem_app)
    w.step()
    assert started.wait(10)
    mem_app.control.revoke(res.id, terminate=True)
    w.keeper.renew_once()
    w.run_until_idle()
    o = res.outcome
    assert o is not None and o.state is TaskState.REVOKED and o.reason == "terminated"
    assert mem_app.broker.queue_stats() == []
    release.set()
    w.groups[0].pool.stop(1.0)


def test_global_rate_limit_spaces_starts_and_waits_in_the_broker(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    starts: list[float] = []

    @mem_app.task(rate_limit="2/s")
    def limited() -> None:
        starts.append(fake_clock.now())

    results = [limited.delay() for _ in range(3)]
    w = solo_worker(mem_app)
    w.run_until_idle()
    assert len(starts) == 1
    (stats,) = mem_app.broker.queue_stats()
    assert (stats.scheduled, stats.leased) == (2, 0)  # waiting in the broker, no slot held
    for _ in range(2):
        fake_clock.advance(0.5)
        w.run_until_idle()
    assert [round(t - starts[0], 3) for t in starts] == [0.0, 0.5, 1.0]
    assert all(r.outcome is not None and r.outcome.attempt == 1 for r in results)


def test_per_worker_rate_limit_counts_in_each_worker_alone(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    ran: list[str] = []

    @mem_app.task(per_worker_rate_limit="1/s", bind=True)
    def limited(self) -> None:  # type: ignore[no-untyped-def]
        ran.append(self.request.hostname)

    for _ in range(3):
        limited.delay()
    a, b = solo_worker(mem_app, name="a"), solo_worker(mem_app, name="b")
    a.step()
    b.step()  # b's own budget: Celery's per-worker behaviour
    assert ran == ["a", "b"]
    a.run_until_idle()  # a's next slot is a second away: the call waits in the broker
    assert ran == ["a", "b"]
    fake_clock.advance(1.0)
    a.run_until_idle()
    assert ran == ["a", "b", "a"]


def test_dead_letter_on_failure_keeps_the_message_for_redrive(mem_app: Conveyor) -> None:
    attempts: list[int] = []

    @mem_app.task(dead_letter_on_failure=True, bind=True)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        attempts.append(self.request.attempt)
        if len(attempts) == 1:
            raise ValueError("first time")
        return len(attempts)

    res = flaky.delay()
    w = solo_worker(mem_app)
    w.run_until_idle()
    assert res.state is TaskState.FAILURE
    found = mem_app.broker.get_message(res.id)
    assert found is not None and found.state is MessageState.DEAD
    assert found.reason == "failed: ValueError: first time"
    assert mem_app.broker.redrive([res.id]) == 1
    w.run_until_idle()
    assert res.get(timeout=1) == 2


def test_thread_pool_soft_limit_raises_inside_the_task(mem_app: Conveyor) -> None:
    @mem_app.task(soft_time_limit=0.2)
    def careful() -> str:
        try:
            while True:
                time.sleep(0.005)
        except SoftTimeLimitExceeded:
            return "cleaned up"

    res = careful.delay()
    w = thread_worker(mem_app)
    w.run_until_idle()
    assert res.get(timeout=1) == "cleaned up"
    w.groups[0].pool.stop(1.0)


def test_thread_pool_hard_limit_fails_the_call_and_replaces_the_slot(mem_app: Conveyor) -> None:
    @mem_app.task(time_limit=0.2)
    def stuck() -> None:
        while True:
            try:
                time.sleep(0.005)
            except Exception:  # a task that swallows everything still loses its slot
                continue

    @mem_app.task
    def quick() -> str:
        return "ran"

    bad, good = stuck.delay(), quick.delay()
    w = thread_worker(mem_app)
    w.run_until_idle()
    o = bad.outcome
    assert o is not None and o.state is TaskState.FAILURE and o.error is not None
    assert o.error.type == "TimeLimitExceeded"
    assert good.get(timeout=1) == "ran"  # the replacement thread served the next call
    assert w.groups[0].pool.free_slots() == 1


def test_solo_pool_limits_arrive_as_exceptions(mem_app: Conveyor) -> None:
    @mem_app.task(time_limit=0.2)
    def spin() -> None:
        while True:
            time.sleep(0.005)

    res = spin.delay()
    solo_worker(mem_app).run_until_idle()
    o = res.outcome
    assert o is not None and o.error is not None and o.error.type == "TimeLimitExceeded"


def test_call_time_limits_override_the_task(mem_app: Conveyor) -> None:
    @mem_app.task(soft_time_limit=60)
    def careful() -> str:
        try:
            while True:
                time.sleep(0.005)
        except SoftTimeLimitExceeded:
            return "stopped"

    res = careful.apply_async(soft_time_limit=0.1)
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == "stopped"


def test_dead_letters_are_kept_for_the_retention(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    from conveyor import Reject

    mem_app.conf.update(dead_letter_retention=3600.0)

    @mem_app.task
    def refuse() -> None:
        raise Reject("no", requeue=False)

    res = refuse.delay()
    w = solo_worker(mem_app)
    w.run_until_idle()
    w.purge.run_once()
    assert mem_app.broker.get_message(res.id) is not None
    fake_clock.advance(3601.0)
    w.purge.run_once()
    assert mem_app.broker.get_message(res.id) is None


def test_send_task_carries_call_time_limits(mem_app: Conveyor) -> None:
    @mem_app.task(name="careful")
    def careful() -> str:
        try:
            while True:
                time.sleep(0.005)
        except SoftTimeLimitExceeded:
            return "stopped"

    res = mem_app.send_task("careful", soft_time_limit=0.1)
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == "stopped"
