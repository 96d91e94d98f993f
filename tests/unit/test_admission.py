"""One message never takes a worker down: each delivery is admitted, decoded and handed to its
pool on its own, and whatever is wrong with it ends that message only (a dead letter with its
own reason) while its neighbours run. A crash of the worker itself counts as a lost run."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import msgspec
import pytest

from conveyor import AsyncResult, Conveyor, chain, chord, signature
from conveyor.brokers.base import Envelope, MessageState, WorkerInfo
from conveyor.canvas.flow import send_node
from conveyor.canvas.nodes import ChordJoin, SigNode, result_ids
from conveyor.clock import FakeClock
from conveyor.message import Message, encode_message
from conveyor.results.base import ErrorInfo, Outcome
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.jobs import Job
from conveyor.worker.pools import SoloPool
from conveyor.worker.settle import Settler
from conveyor.worker.slots import SlotGroup
from conveyor.worker.worker import Worker, default_options

from ..rawstore import spoil


def batch_worker(app: Conveyor, size: int = 4) -> Worker:
    """A thread-pool worker: it reserves `size` deliveries in one batch."""
    w = Worker(app, default_options(app, name="batch@local", pool="threads", concurrency=size))
    w.groups[0].pool.start()
    return w


def dead_reason(app: Conveyor, message_id: str) -> str:
    found = app.broker.get_message(message_id)
    assert found is not None and found.state is MessageState.DEAD, found
    return found.reason or ""


def rejected(app: Conveyor, message_id: str, task: str | None = None) -> Outcome:
    """The FAILURE stored under a dead-lettered envelope's id: MessageRejected, naming the dead
    letter's reason, written under the delivery's lease (its token)."""
    outcome = app.results.get(message_id)
    assert outcome is not None and outcome.state is TaskState.FAILURE, outcome
    assert outcome.error is not None and outcome.error.type == "MessageRejected"
    assert outcome.error.message == outcome.reason == dead_reason(app, message_id)
    assert outcome.task_name == task and outcome.token > 0
    return outcome


def test_any_error_reading_a_delivery_dead_letters_it_and_its_batch_runs(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    first = add.delay(1, 1)
    # a body that is not even bytes: decoding raises TypeError, not DecodeError
    mem_app.broker.enqueue([Envelope("not-bytes", "celery", None)])  # type: ignore[arg-type]
    last = add.delay(2, 2)
    worker = batch_worker(mem_app)
    try:
        worker.run_until_idle()
    finally:
        worker.groups[0].pool.stop(5.0)
    assert (first.get(timeout=5), last.get(timeout=5)) == (2, 4)
    assert dead_reason(mem_app, "not-bytes").startswith("unreadable message: TypeError: ")
    rejected(mem_app, "not-bytes")  # nothing known but the envelope's id


def test_a_body_whose_id_is_another_calls_is_dead_lettered_and_that_call_untouched(
    mem_app: Conveyor,
) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    victim = add.delay(1, 2)
    solo_worker(mem_app).run_until_idle()
    before = victim.outcome
    assert before is not None and before.state is TaskState.SUCCESS and victim.get() == 3
    then = (SigNode(add.name, "victims-next", args=(1,)),)
    forged = encode_message(
        Message(id=victim.id, task=add.name, args=(100, 100), chain=then), 1 << 20
    )
    mem_app.broker.enqueue([Envelope("intruder", "celery", forged)])
    solo_worker(mem_app).run_until_idle()
    reason = dead_reason(mem_app, "intruder")
    assert f"carries id {victim.id!r}, not its envelope's 'intruder'" in reason
    assert mem_app.results.get(victim.id) == before  # nothing written over the other call
    rejected(mem_app, "intruder")  # its own FAILURE, nothing of the forged body trusted
    assert mem_app.results.get("victims-next") is None


def test_a_body_over_the_workers_message_size_limit_is_dead_lettered(mem_app: Conveyor) -> None:
    @mem_app.task
    def echo(text: str) -> str:
        return text

    mem_app.conf.update(task_message_max_size=1000)
    big = encode_message(Message(id="big", task=echo.name, args=("x" * 2000,)), 1 << 20)
    mem_app.broker.enqueue([Envelope("big", "celery", big)])
    small = echo.delay("fits")
    solo_worker(mem_app).run_until_idle()
    assert small.get(timeout=1) == "fits"
    assert f"{len(big)} bytes, over this worker's task_message_max_size of 1000" in dead_reason(
        mem_app, "big"
    )
    rejected(mem_app, "big", echo.name)


def test_a_stored_body_nested_600_deep_is_dead_lettered_naming_the_limit(
    mem_app: Conveyor,
) -> None:
    @mem_app.task
    def total(values: list[int]) -> int:
        return sum(values)

    body = (
        b'{"id":"deep","task":"' + total.name.encode() + b'","args":[' + b"[" * 600 + b"]" * 600
    ) + b"]}"
    mem_app.broker.enqueue([Envelope("deep", "celery", body)])
    ok = total.delay([1, 2])
    solo_worker(mem_app).run_until_idle()
    assert ok.get(timeout=1) == 3
    assert "nested more than 100 lists/dicts deep" in dead_reason(mem_app, "deep")
    rejected(mem_app, "deep", total.name)


def test_a_refused_call_fails_the_rest_of_its_workflow(mem_app: Conveyor) -> None:
    """A call dead-lettered when admitted (here: a task no worker has) ends FAILURE, and so do
    the steps after it and the body of a chord it is a member of: nobody waits on PENDING."""

    @mem_app.task(name="p.add")
    def add(x: int, y: int) -> int:
        return x + y

    unknown = signature("p.gone", (1,), app=mem_app)
    mem_app.broker.register_worker(WorkerInfo("new@h", ("celery",), ("p.gone",), 1, 0.0))
    steps = chain(unknown, add.s(2), add.s(3)).apply_async()  # another worker published it
    tail = chord([add.s(1, 1), unknown], add.s(0)).apply_async()
    solo_worker(mem_app).run_until_idle()  # this worker does not have p.gone
    assert isinstance(steps, AsyncResult) and isinstance(tail, AsyncResult)
    reason = "task 'p.gone' is not registered in worker test@local"
    ids = [m.envelope.id for m in mem_app.broker.list_messages("celery", MessageState.DEAD)]
    assert len(ids) == 2 and all(dead_reason(mem_app, i) == reason for i in ids)
    for mid in ids:
        rejected(mem_app, mid, "p.gone")
    outcome = steps.outcome
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and outcome.error.type == "MessageRejected"
    assert outcome.error.message == reason
    outcome = tail.outcome  # a chord's body fails with Celery's ChordError naming the member
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and outcome.error.type == "ChordError"
    assert outcome.error.message.endswith(f"raised MessageRejected({reason!r})")
    assert mem_app.broker.queue_stats()[0].ready == 0


def test_a_stored_chord_member_carrying_a_too_deep_body_fails_the_body(
    mem_app: Conveyor,
) -> None:
    @mem_app.task(name="p.add")
    def add(x: int, y: int) -> int:
        return x + y

    deep: object = 1
    for _ in range(600):
        deep = [deep]
    then = (SigNode("p.total", "body", kwargs={"extra": deep}),)
    member = Message(id="member", task="p.add", args=(1, 1), chord="c", join=ChordJoin(1, then))
    mem_app.broker.enqueue([Envelope("member", "celery", msgspec.json.encode(member))])
    solo_worker(mem_app).run_until_idle()
    assert "join.then[0] (p.total) kwargs['extra'][0]" in dead_reason(mem_app, "member")
    rejected(mem_app, "member", "p.add")
    body = mem_app.results.get("body")
    assert body is not None and body.state is TaskState.FAILURE
    assert body.reason == "a member of the chord's header failed: p.add[member]"


def test_a_rejection_under_a_lease_that_was_lost_writes_nothing(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    then = (SigNode("p.add", "next"),)
    message = Message(id="m", task="p.gone", chain=then)
    mem_app.broker.enqueue([Envelope("m", "celery", encode_message(message, 1 << 20))])
    (stale,) = mem_app.broker.reserve(["celery"], 1, 30.0, 0.0)
    fake_clock.advance(31.0)  # the worker paused past its lease; the message went to another
    (fresh,) = mem_app.broker.reserve(["celery"], 1, 30.0, 0.0)
    assert fresh.lease.token > stale.lease.token
    settler = Settler(mem_app.broker, mem_app.results, "w@local", 1 << 20, mem_app)
    error = ErrorInfo("MessageRejected", "why")
    outcome = Outcome("m", TaskState.FAILURE, error=error, token=stale.lease.token)
    settler.reject(stale, "why", outcome, message.links, message.task)
    assert mem_app.results.get_many(["m", "next"]) == {}  # fenced: nothing written
    found = mem_app.broker.get_message("m")
    assert found is not None and found.state is MessageState.LEASED  # still the new holder's


class RefusingPool(SoloPool):
    """A solo pool that cannot take calls for one task, as the process pool cannot take a call
    it cannot pickle: `submit` raises before anything runs."""

    def submit(self, job: Job) -> None:
        if job.message.task.endswith("unsendable"):
            raise RecursionError("maximum recursion depth exceeded while pickling an object")
        super().submit(job)


def test_a_call_the_pool_cannot_take_fails_and_is_dead_lettered_while_others_run(
    mem_app: Conveyor,
) -> None:
    mem_app.conf.update(task_track_started=True)

    @mem_app.task(name="p.unsendable")
    def unsendable() -> None:
        raise AssertionError("never runs")

    @mem_app.task(name="p.fine")
    def fine() -> str:
        return "ok"

    refused, ok = unsendable.delay(), fine.delay()
    node = chain(unsendable.s(), fine.si())._node()
    send_node(mem_app, node)
    first, second = result_ids(node.steps[0]), result_ids(node)
    worker = solo_worker(mem_app)
    worker.groups[0].pool = RefusingPool(lambda name: mem_app.tasks[name])
    worker.run_until_idle()
    assert ok.get(timeout=1) == "ok"
    outcome = refused.outcome  # not left STARTED: FAILURE with the pool's error
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and outcome.error.type == "RecursionError"
    reason = dead_reason(mem_app, refused.id)
    assert reason.startswith("could not be handed to the solo pool: RecursionError: maximum")
    assert reason.endswith("or run this task on a threads pool (-P threads)")
    after = mem_app.results.get(second[0])  # the rest of its chain fails with it
    assert after is not None and after.state is TaskState.FAILURE and after.error == outcome.error
    assert after.reason == f"an earlier step of the chain failed: p.unsendable[{first[0]}]"
    assert worker.groups[0].idle and mem_app.broker.queue_stats()[0].leased == 0


def test_an_unreadable_stored_row_is_dead_lettered_with_the_brokers_reason(
    tmp_path: Path,
) -> None:
    app = Conveyor("rows", broker=f"sqlite:///{tmp_path / 'b.db'}", set_as_current=False)
    try:

        @app.task
        def add(x: int, y: int) -> int:
            return x + y

        calls = [add.delay(i, 1) for i in range(3)]
        spoil(app.broker, calls[1].id, "body", None)
        spoil(app.broker, calls[2].id, "priority", "urgent")
        worker = batch_worker(app)
        try:
            worker.run_until_idle()
        finally:
            worker.groups[0].pool.stop(5.0)
        assert calls[0].get(timeout=5) == 1
        assert dead_reason(app, calls[1].id) == "unreadable message row: body is NULL"
        assert "priority is 'urgent', not an integer" in dead_reason(app, calls[2].id)
    finally:
        app.close()


def run_until_crash(worker: Worker) -> BaseException | None:
    """Run a worker's production loop on a thread (no signal handlers) until it stops."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the worker did not stop"
    return failure[0] if failure else None


def crash_holding(group: SlotGroup) -> None:
    """In place of `dispatch`: the loop fails while the group holds a delivery."""
    if group.backlog:
        raise RuntimeError("a bug in the worker")


def test_a_delivery_cut_off_by_a_crash_of_the_worker_counts_as_a_lost_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that makes the slot group's loop raise while it holds a delivery stops the worker;
    the delivery goes back as a lost run, so one that crashes every worker that takes it ends
    dead-lettered after max_deliveries instead of crash-looping them for ever."""
    app = Conveyor("crash", broker=f"sqlite:///{tmp_path / 'c.db'}", set_as_current=False)
    app.conf.update(worker_shutdown_timeout=5.0)
    try:

        @app.task(max_deliveries=2)
        def doomed() -> None:
            raise AssertionError("never runs")

        res = doomed.delay()
        for attempt in (1, 2):
            worker = Worker(app, default_options(app, name=f"w{attempt}@local", pool="threads"))
            group = worker.groups[0]
            monkeypatch.setattr(group, "dispatch", functools.partial(crash_holding, group))
            failure = run_until_crash(worker)
            assert isinstance(failure, RuntimeError)
            stored = app.broker.get_message(res.id)
            assert stored is not None and stored.last_error == (
                "worker crashed: RuntimeError: a bug in the worker"
            )
        assert dead_reason(app, res.id) == "run lost 2 times (max_deliveries)"
    finally:
        app.close()


def test_a_crash_whose_text_no_store_can_keep_is_given_back_with_it_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash's text quotes anything (here a file name with an undecodable byte, and NUL):
    it is escaped before it is stored as the delivery's last error, so the give-back lands."""
    app = Conveyor("crash", broker=f"sqlite:///{tmp_path / 'c.db'}", set_as_current=False)
    app.conf.update(worker_shutdown_timeout=5.0)
    try:

        @app.task
        def doomed() -> None:
            raise AssertionError("never runs")

        def crash(group: SlotGroup) -> None:
            if group.backlog:
                raise RuntimeError("cannot parse caf\udcff.csv\x00")

        res = doomed.delay()
        worker = Worker(app, default_options(app, name="w@local", pool="threads"))
        group = worker.groups[0]
        monkeypatch.setattr(group, "dispatch", functools.partial(crash, group))
        assert isinstance(run_until_crash(worker), RuntimeError)
        stored = app.broker.get_message(res.id)
        assert stored is not None and stored.state is MessageState.READY
        assert stored.last_error == "worker crashed: RuntimeError: cannot parse caf\\xff.csv\\x00"
    finally:
        app.close()


def test_an_ordinary_stop_still_gives_back_without_counting(tmp_path: Path) -> None:
    app = Conveyor("stop", broker=f"sqlite:///{tmp_path / 's.db'}", set_as_current=False)
    try:

        @app.task(max_deliveries=1)
        def waits() -> None:
            raise AssertionError("never runs")

        res = waits.delay()
        for _ in range(3):
            worker = Worker(app, default_options(app, name="w@local", pool="threads"))
            group = worker.groups[0]
            group.reserve(0.0)
            assert len(group.backlog) == 1
            group.shutdown(0.0)  # what a SIGTERM does: it is given back, not counted
            group.pool.stop(1.0)
        stored = app.broker.get_message(res.id)
        assert stored is not None and stored.state is MessageState.READY
        assert stored.last_error == "worker shutting down before the task started"
    finally:
        app.close()
