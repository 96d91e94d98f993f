"""The worker driven step by step: solo pool, memory broker, FakeClock. No threads, no sleeps."""

from __future__ import annotations

import itertools

import pytest

from conveyor import Conveyor, Ignore, Reject, RemoteError, TaskRevokedError
from conveyor.brokers.base import Envelope, MessageState
from conveyor.clock import FakeClock
from conveyor.errors import EncodeError
from conveyor.states import TaskState
from conveyor.testing import solo_worker


def test_success_stores_the_value_and_acks(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    res = add.delay(2, 3)
    worker = solo_worker(mem_app)
    assert worker.run_until_idle() == 1
    assert res.get(timeout=1) == 5
    o = res.outcome
    assert o is not None and (o.state, o.attempt, o.worker, o.queue) == (
        TaskState.SUCCESS,
        1,
        "test@local",
        "celery",
    )
    assert o.started_at is not None and o.finished_at is not None
    assert mem_app.broker.queue_stats() == []


def test_bound_task_sees_its_request(mem_app: Conveyor) -> None:
    seen: dict[str, object] = {}

    @mem_app.task(bind=True)
    def who(self, x: int) -> None:  # type: ignore[no-untyped-def]
        r = self.request
        seen.update(
            id=r.id,
            task=r.task,
            args=r.args,
            retries=r.retries,
            attempt=r.attempt,
            hostname=r.hostname,
            queue=r.delivery_info["queue"],
        )

    res = who.delay(7)
    solo_worker(mem_app).run_until_idle()
    assert seen == {
        "id": res.id,
        "task": who.name,
        "args": (7,),
        "retries": 0,
        "attempt": 1,
        "hostname": "test@local",
        "queue": "celery",
    }
    assert who.request.called_directly  # outside a run


def test_failure_keeps_type_message_and_traceback(mem_app: Conveyor) -> None:
    class PaymentDeclined(Exception):
        pass

    @mem_app.task
    def charge() -> None:
        raise PaymentDeclined("card declined")

    @mem_app.task
    def lookup() -> None:
        raise KeyError("user-9")

    r1, r2 = charge.delay(), lookup.delay()
    solo_worker(mem_app).run_until_idle()
    assert r1.failed()
    with pytest.raises(RemoteError, match="PaymentDeclined: card declined") as info:
        r1.get(timeout=1)
    assert "raise PaymentDeclined" in (info.value.traceback or "")
    assert "raise PaymentDeclined" in (r1.traceback or "")
    with pytest.raises(KeyError, match="user-9"):
        r2.get(timeout=1)
    assert isinstance(r2.get(timeout=1, propagate=False), KeyError)


def test_retry_waits_in_the_broker_then_succeeds(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    @mem_app.task(bind=True, max_retries=3)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        if self.request.retries < 2:
            raise self.retry(exc=TimeoutError("slow"), countdown=10)
        return int(self.request.retries)

    res = flaky.delay()
    worker = solo_worker(mem_app)
    worker.run_until_idle()
    assert res.state is TaskState.RETRY
    o = res.outcome
    assert (
        o is not None and o.retries == 1 and o.error is not None and o.error.type == "TimeoutError"
    )
    (stats,) = mem_app.broker.queue_stats()
    assert stats.scheduled == 1 and stats.leased == 0  # the delay lives in the broker
    fake_clock.advance(9)
    assert worker.run_until_idle() == 0
    fake_clock.advance(1)
    worker.run_until_idle()
    fake_clock.advance(10)
    worker.run_until_idle()
    assert res.get(timeout=1) == 2
    assert res.outcome is not None and res.outcome.attempt == 3


def test_retries_exhausted_reraise_the_last_error(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    @mem_app.task(bind=True, max_retries=1, default_retry_delay=5)
    def always(self) -> None:  # type: ignore[no-untyped-def]
        raise self.retry(exc=ConnectionError("down"))

    res = always.delay()
    worker = solo_worker(mem_app)
    for _ in range(3):
        worker.run_until_idle()
        fake_clock.advance(5)
    assert res.state is TaskState.FAILURE
    with pytest.raises(ConnectionError, match="down"):
        res.get(timeout=1)


def test_autoretry_with_backoff(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    attempts: list[float] = []

    @mem_app.task(
        autoretry_for=(ConnectionError,), retry_backoff=2, retry_jitter=False, max_retries=3
    )
    def call_api() -> None:
        attempts.append(fake_clock.now())
        raise ConnectionError("503")

    res = call_api.delay()
    worker = solo_worker(mem_app)
    for _ in range(20):
        worker.run_until_idle()
        fake_clock.advance(1)
    gaps = [round(b - a) for a, b in itertools.pairwise(attempts)]
    assert gaps == [2, 4, 8]
    assert res.state is TaskState.FAILURE


def test_expired_message_is_never_started(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    ran = []

    @mem_app.task
    def poll() -> None:
        ran.append(1)

    res = poll.apply_async(expires=60)
    fake_clock.advance(61)
    solo_worker(mem_app).run_until_idle()
    assert ran == []
    assert res.state is TaskState.REVOKED and res.outcome and res.outcome.reason == "expired"
    with pytest.raises(TaskRevokedError, match="expired"):
        res.get(timeout=1)
    assert mem_app.broker.queue_stats() == []


def test_undecodable_body_is_dead_lettered_and_the_worker_goes_on(mem_app: Conveyor) -> None:
    @mem_app.task
    def fine() -> str:
        return "ok"

    mem_app.broker.enqueue([Envelope("garbage", "celery", b"\x00not json")])
    res = fine.delay()
    worker = solo_worker(mem_app)
    worker.run_until_idle()
    assert res.get(timeout=1) == "ok"
    (dead,) = mem_app.broker.list_messages("celery", MessageState.DEAD)
    assert dead.envelope.id == "garbage" and "undecodable" in (dead.reason or "")


def test_message_for_an_unregistered_task_is_dead_lettered(mem_app: Conveyor) -> None:
    other = Conveyor("other", broker="memory://", set_as_current=False)
    other._broker = mem_app.broker  # a producer that knows a task this worker does not
    other.task(name="not.here")(lambda: None).delay()
    solo_worker(mem_app).run_until_idle()
    (dead,) = mem_app.broker.list_messages("celery", MessageState.DEAD)
    assert "not registered" in (dead.reason or "")


def test_reject_and_ignore(mem_app: Conveyor) -> None:
    @mem_app.task
    def refuse() -> None:
        raise Reject("bad input", requeue=False)

    @mem_app.task
    def skip() -> None:
        raise Ignore()

    r1, r2 = refuse.delay(), skip.delay()
    solo_worker(mem_app).run_until_idle()
    assert r1.state is TaskState.FAILURE and r1.outcome and r1.outcome.reason == "rejected"
    (dead,) = mem_app.broker.list_messages("celery", MessageState.DEAD)
    assert dead.envelope.id == r1.id
    assert r2.state is TaskState.PENDING  # settled without an outcome
    assert [s.ready + s.leased for s in mem_app.broker.queue_stats()] == [0]


def test_ignore_result_writes_nothing(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    mem_app.conf.task_track_started = True

    @mem_app.task(ignore_result=True)
    def quiet() -> int:
        return 1

    @mem_app.task(ignore_result=True, bind=True, max_retries=1)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        if not self.request.retries:
            raise self.retry(exc=TimeoutError("slow"), countdown=5)
        return 2

    res, retried = quiet.delay(), flaky.delay()
    worker = solo_worker(mem_app)
    worker.run_until_idle()
    assert res.state is TaskState.PENDING and retried.state is TaskState.PENDING  # no RETRY
    fake_clock.advance(5)
    worker.run_until_idle()
    assert retried.state is TaskState.PENDING
    assert mem_app.broker.queue_stats() == []


def test_non_json_return_value_fails_the_task(mem_app: Conveyor) -> None:
    @mem_app.task
    def returns_set() -> object:
        return {1, 2}

    res = returns_set.delay()
    solo_worker(mem_app).run_until_idle()
    with pytest.raises(EncodeError, match=r"return value is a builtins\.set"):
        res.get(timeout=1)


def test_priorities_and_queues_in_a_worker(mem_app: Conveyor) -> None:
    order: list[str] = []

    @mem_app.task
    def note(x: str) -> None:
        order.append(x)

    note.apply_async(("low",), priority=0)
    note.apply_async(("high",), priority=9)
    note.apply_async(("elsewhere",), queue="other")
    solo_worker(mem_app, queues=("celery",)).run_until_idle()
    assert order == ["high", "low"]


def test_forget(mem_app: Conveyor) -> None:
    @mem_app.task
    def one() -> int:
        return 1

    res = one.delay()
    solo_worker(mem_app).run_until_idle()
    res.forget()
    assert res.state is TaskState.PENDING and res.result is None


def test_prefetch_multiplier_reserves_more_than_free_slots(mem_app: Conveyor) -> None:
    from conveyor.worker.worker import Worker, default_options

    @mem_app.task
    def noop() -> None: ...

    for _ in range(6):
        noop.delay()
    worker = Worker(mem_app, default_options(mem_app, name="w", prefetch_multiplier=3))
    worker.step()  # reserves 3 for its one free slot, runs 1, holds 2 leased in its backlog
    (stats,) = mem_app.broker.queue_stats()
    assert (stats.ready, stats.leased) == (3, 2)
    assert worker.keeper.held() == 2
    worker.run_until_idle()
    assert mem_app.broker.queue_stats() == []


def test_fetch_per_free_slot_by_default(mem_app: Conveyor) -> None:
    @mem_app.task
    def noop() -> None: ...

    for _ in range(3):
        noop.delay()
    worker = solo_worker(mem_app)
    worker.step()
    (stats,) = mem_app.broker.queue_stats()
    assert (stats.ready, stats.leased) == (2, 0)  # nothing waits in a busy worker


def test_thread_pool_returns_a_job_even_when_the_task_escapes_execute(mem_app: Conveyor) -> None:
    from conveyor.request import request_for
    from conveyor.worker.jobs import Job
    from conveyor.worker.pools import ThreadPool

    @mem_app.task
    def leave() -> None:
        raise SystemExit(3)  # not an Exception: execute() does not settle it

    pool = ThreadPool(mem_app.tasks.__getitem__, 1)
    pool.start()
    res = leave.delay()
    msg = mem_app.broker.reserve(["celery"], 1, 30)[0]
    from conveyor.message import decode_message

    message = decode_message(msg.envelope.body)
    pool.submit(Job(1, message, request_for(message, "w", 1)))
    (done,) = pool.completions(timeout=10)
    assert done.key == 1 and done.lost is not None and "SystemExit" in done.lost
    assert pool.free_slots() == 1
    assert pool.stop(5) == []
    assert res.state is TaskState.PENDING
