"""The signals sent outside a task's run: before/after_task_publish by the producer, and
task_received, task_revoked, task_rejected, task_unknown, worker_ready, heartbeat_sent and
worker_shutting_down by the worker's main process, each with Celery's arguments."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor import Conveyor, Reject
from conveyor import signals as sig
from conveyor.brokers.base import Delivery, Envelope
from conveyor.clock import FakeClock
from conveyor.errors import MessageRejected, NotRegistered
from conveyor.request import Request
from conveyor.states import TaskState
from conveyor.worker.signals import install_shutdown_signals
from conveyor.worker.worker import Worker, default_options

from ..integration.helpers import wait_until
from .test_worker_services import start

Heard = list[tuple[str, dict[str, Any]]]
NAMES = (
    "before_task_publish",
    "after_task_publish",
    "task_received",
    "task_revoked",
    "task_rejected",
    "task_unknown",
    "worker_ready",
    "heartbeat_sent",
    "worker_shutting_down",
)


@pytest.fixture
def heard() -> Iterator[Heard]:
    """A recorder connected (strongly) to each signal above; disconnected after the test."""
    calls: Heard = []
    recorders: dict[str, Callable[..., None]] = {}
    for name in NAMES:
        recorders[name] = record = _recorder(name, calls)
        getattr(sig, name).connect(record, weak=False)
    yield calls
    for name, record in recorders.items():
        assert getattr(sig, name).disconnect(record)


def _recorder(name: str, calls: Heard) -> Callable[..., None]:
    def record(**kwargs: Any) -> None:  # task_unknown sends name=: no parameter of that name
        calls.append((name, kwargs))

    return record


def of(heard: Heard, name: str) -> list[dict[str, Any]]:
    """What `name` was sent with, each time; checks it carried exactly its documented args."""
    found = [kw for n, kw in heard if n == name]
    for kw in found:
        assert set(kw) - {"signal", "sender"} == set(getattr(sig, name).providing_args), name
    return found


def test_publishing_sends_before_and_after_task_publish_with_celery_style_arguments(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(name="p.add")
    def add(x: int, y: int) -> int:
        return x + y

    res = add.apply_async((2, 3), queue="fast", headers={"trace": "t-1"}, time_limit=9)
    (before,) = of(heard, "before_task_publish")
    (after,) = of(heard, "after_task_publish")
    for kw in (before, after):
        assert (kw["sender"], kw["exchange"], kw["routing_key"]) == ("p.add", "", "fast")
        assert kw["body"]["id"] == res.id and kw["body"]["args"] == [2, 3]
        headers = kw["headers"]
        assert (headers["id"], headers["task"], headers["lang"]) == (res.id, "p.add", "py")
        assert headers["trace"] == "t-1" and headers["timelimit"] == [9, None]
        assert headers["origin"].startswith("gen")
    assert before["properties"]["correlation_id"] == res.id
    assert before["declare"] == [] and before["retry_policy"] is None
    assert [n for n, _ in heard] == ["before_task_publish", "after_task_publish"]


def test_send_many_sends_one_pair_per_stored_call_and_a_resend_no_after(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(name="p.one")
    def one(x: int) -> int:
        return x

    results = mem_app.send_many(one, [(i,) for i in range(7)], chunk_size=3)
    assert [kw["body"]["id"] for kw in of(heard, "before_task_publish")] == [r.id for r in results]
    assert [kw["headers"]["id"] for kw in of(heard, "after_task_publish")] == [
        r.id for r in results
    ]
    heard.clear()
    one.apply_async((1,), task_id=results[0].id)  # the broker knows this id: not stored again
    assert [n for n, _ in heard] == ["before_task_publish"]


def test_a_raising_publish_receiver_changes_nothing(mem_app: Conveyor) -> None:
    @mem_app.task(name="p.noop")
    def noop() -> None:
        return None

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("broken")

    sig.before_task_publish.connect(broken)
    sig.after_task_publish.connect(broken)
    try:
        res = noop.delay()
    finally:
        sig.before_task_publish.disconnect(broken)
        sig.after_task_publish.disconnect(broken)
    assert mem_app.broker.queue_stats()[0].ready == 1 and res.id


def _worker(app: Conveyor) -> Worker:
    return Worker(app, default_options(app, name="w@sig", prefetch_multiplier=2))


def test_received_and_revoked_for_a_waiting_call_carry_its_request(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(name="w.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = _worker(mem_app)
    keep, victim = add.delay(1, 2), add.apply_async((7, 8), kwargs={}, queue="celery")
    worker.groups[0].reserve(0.0)  # both reserved, none started
    mem_app.control.revoke(victim.id)
    worker.keeper.renew_once()  # the renewal carries the revocation
    worker.run_until_idle()
    assert victim.state is TaskState.REVOKED and keep.state is TaskState.SUCCESS
    received = of(heard, "task_received")
    assert [kw["request"].id for kw in received] == [keep.id, victim.id]
    request = received[1]["request"]
    assert isinstance(request, Request) and received[1]["sender"] is worker
    assert (request.task, request.args, request.kwargs, request.hostname) == (
        "w.add",
        (7, 8),
        {},
        "w@sig",
    )
    assert request.delivery_info["queue"] == "celery"
    (revoked,) = of(heard, "task_revoked")
    assert revoked["sender"] is add and revoked["request"].id == victim.id
    assert (revoked["terminated"], revoked["expired"], revoked["signum"]) == (False, False, None)


def test_an_expired_call_is_received_then_revoked_as_expired(
    mem_app: Conveyor, fake_clock: FakeClock, heard: Heard, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(name="w.poll")
    def poll() -> None:
        return None

    @sig.task_revoked.connect
    def seed(request: Any, **kwargs: Any) -> None:  # the handler the issue quotes
        logging.getLogger("seed").warning(f"Task revoked: {request.id}")

    res = poll.apply_async(expires=60)
    fake_clock.advance(61)
    try:
        with caplog.at_level(logging.WARNING, "seed"):
            _worker(mem_app).run_until_idle()
    finally:
        sig.task_revoked.disconnect(seed)
    assert [n for n, _ in heard if "publish" not in n] == ["task_received", "task_revoked"]
    (revoked,) = of(heard, "task_revoked")
    assert (revoked["expired"], revoked["terminated"], revoked["request"].id) == (
        True,
        False,
        res.id,
    )
    assert f"Task revoked: {res.id}" in caplog.messages


def test_an_unknown_task_sends_task_unknown_and_an_unreadable_body_task_rejected(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(name="w.known")
    def known() -> None:
        return None

    other = Conveyor("other", broker="memory://", set_as_current=False)
    other._broker = mem_app.broker  # a producer that knows a task this worker does not
    stranger = other.task(name="not.here")(lambda: None).delay()
    mem_app.broker.enqueue([Envelope(id="junk-1", queue="celery", body=b"not json")])
    worker = _worker(mem_app)
    worker.run_until_idle()
    assert of(heard, "task_received") == []
    (unknown,) = of(heard, "task_unknown")
    assert (unknown["sender"], unknown["name"], unknown["id"]) == (worker, "not.here", stranger.id)
    assert isinstance(unknown["message"], Delivery) and isinstance(unknown["exc"], NotRegistered)
    assert "not registered in worker w@sig" in str(unknown["exc"])
    (rejected,) = of(heard, "task_rejected")
    assert rejected["sender"] is worker and rejected["message"].envelope.id == "junk-1"
    assert isinstance(rejected["exc"], MessageRejected)


def test_a_raising_worker_side_receiver_changes_no_outcome(
    mem_app: Conveyor, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(name="w.sum")
    def total(x: int) -> int:
        return x

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("broken")

    for signal_ in (sig.task_received, sig.task_revoked):
        signal_.connect(broken)
    try:
        ok, late = total.delay(1), total.apply_async((2,), expires=5)
        fake_clock.advance(6)
        _worker(mem_app).run_until_idle()
    finally:
        for signal_ in (sig.task_received, sig.task_revoked):
            signal_.disconnect(broken)
    assert ok.state is TaskState.SUCCESS and late.state is TaskState.REVOKED
    assert sum("raised RuntimeError('broken')" in m for m in caplog.messages) == 3


def test_a_running_worker_sends_worker_ready_once_and_heartbeat_sent_per_beat(
    heard: Heard,
) -> None:
    app = Conveyor("sig", broker="memory://", set_as_current=False)
    options = default_options(app, name="w@beat", pool="threads", concurrency=1, lease_for=0.6)
    worker = Worker(app, options)
    thread, failures = start(worker)
    wait_until(lambda: len(of(heard, "heartbeat_sent")) >= 2, 30, "two heartbeats")
    worker.stop()
    thread.join(30)
    assert not thread.is_alive() and failures == []
    (ready,) = of(heard, "worker_ready")
    assert ready["sender"] is worker
    assert all(kw["sender"] is worker for kw in of(heard, "heartbeat_sent"))
    assert [n for n, _ in heard if n != "heartbeat_sent"] == ["worker_ready"]


def test_shutdown_signals_send_worker_shutting_down_warm_then_cold(
    mem_app: Conveyor, heard: Heard, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exited(Exception):
        """Stands in for the cold stop's os._exit."""

    def cold_stop() -> None:
        raise Exited

    worker = _worker(mem_app)
    monkeypatch.setattr(worker, "cold_stop", cold_stop)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        install_shutdown_signals(worker)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        handler(signal.SIGTERM, None)
        assert worker.stopping and of(heard, "worker_shutting_down")
        with pytest.raises(Exited):
            handler(signal.SIGINT, None)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    sent = of(heard, "worker_shutting_down")
    assert [(kw["sender"], kw["sig"], kw["how"], kw["exitcode"]) for kw in sent] == [
        ("w@sig", "SIGTERM", "Warm", 0),
        ("w@sig", "SIGINT", "Cold", 1),
    ]


def test_a_send_from_a_handler_that_interrupted_this_thread_mid_send_does_not_deadlock() -> None:
    """A second SIGTERM may run its handler (worker_shutting_down.send) while the main thread
    is inside the first one's send, holding the signal's lock: the lock must be reentrant."""
    s = sig.Signal("reentrant")
    heard: list[int] = []

    def receiver(**kwargs: Any) -> None:
        heard.append(1)

    s.connect(receiver)
    with s._lock:  # where an interrupted send holds it
        assert len(s.send(sender=None)) == 1
    assert heard == [1]


def test_a_terminated_run_sends_task_revoked_with_terminated_and_the_signal_number(
    mem_app: Conveyor, heard: Heard
) -> None:
    """The slot group hands a killed run's outcome (reason "terminated") and the pool's signal
    to WorkerEvents.ended; task_revoked carries both."""

    @mem_app.task(name="w.long")
    def long() -> None:
        return None

    res = long.delay()
    worker = _worker(mem_app)
    worker.groups[0].reserve(0.0)
    (item,) = worker.groups[0].backlog
    outcome = item.outcome(TaskState.REVOKED, "w@sig", reason="terminated")
    worker.events.ended(item, outcome, signal.SIGKILL)
    (revoked,) = of(heard, "task_revoked")
    assert (revoked["request"].id, revoked["sender"]) == (res.id, long)
    assert (revoked["terminated"], revoked["expired"], revoked["signum"]) == (
        True,
        False,
        signal.SIGKILL,
    )


def test_reject_raised_by_the_task_sends_no_task_rejected(mem_app: Conveyor, heard: Heard) -> None:
    """As in Celery: task_postrun (state REJECTED) tells a task's own Reject."""

    @mem_app.task(name="w.refuse")
    def refuse() -> None:
        raise Reject("no", requeue=False)

    res = refuse.delay()
    _worker(mem_app).run_until_idle()
    assert [kw["request"].id for kw in of(heard, "task_received")] == [res.id]
    assert of(heard, "task_rejected") == [] and of(heard, "task_unknown") == []
