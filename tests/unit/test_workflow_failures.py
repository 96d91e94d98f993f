"""Follow-ups that can never succeed fail the workflow and acknowledge the step; chords are
bounded and joining one reads a fixed-size record. Memory broker and store, solo worker."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from conveyor import AsyncResult, Conveyor, chain, chord, group, signature
from conveyor.brokers.base import Envelope
from conveyor.canvas.flow import after_failure, after_success, chord_error, send_node
from conveyor.canvas.nodes import (
    INLINE_LIMIT,
    ChainNode,
    ChordJoin,
    GroupNode,
    SigNode,
    result_ids,
)
from conveyor.clock import FakeClock
from conveyor.errors import BackendUnavailable, EncodeError, WorkflowError
from conveyor.message import (
    Links,
    Message,
    check_call,
    decode_message,
    encode_message,
    new_task_id,
)
from conveyor.results.base import ErrorInfo, Outcome
from conveyor.states import TaskState
from conveyor.testing import solo_worker


@pytest.fixture
def app() -> Conveyor:
    app = Conveyor("flows", broker="memory://", set_as_current=False)
    app.runs = []  # type: ignore[attr-defined]

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        app.runs.append(("add", x, y))  # type: ignore[attr-defined]
        return x + y

    @app.task(name="tsum")
    def tsum(values: list[int], **extra: Any) -> int:
        app.runs.append(("tsum", tuple(values)))  # type: ignore[attr-defined]
        return sum(values)

    return app


def run(app: Conveyor) -> None:
    solo_worker(app).run_until_idle()


def failure(app: Conveyor, task_id: str) -> Outcome:
    outcome = app.results.get(task_id)
    assert outcome is not None and outcome.state is TaskState.FAILURE, outcome
    assert outcome.error is not None
    return outcome


def test_a_chain_whose_next_task_no_worker_knows_fails_and_its_step_runs_once(
    app: Conveyor,
) -> None:
    add = app.tasks["add"]
    unknown = signature("reports.render", app=app)  # a rolling deploy: no worker has it yet
    res = chain(add.s(1, 1), unknown, add.s(5)).apply_async()
    run(app)
    assert app.runs == [("add", 1, 1)]  # type: ignore[attr-defined]
    with pytest.raises(WorkflowError, match=r".*unknown task 'reports\.render'"):
        res.get(timeout=1)
    assert app.broker.queue_stats() == []  # the step was acknowledged, nothing dead-lettered
    assert isinstance(res, AsyncResult)
    last = res.outcome  # the step after the unknown one
    assert last is not None and last.reason is not None
    assert last.reason.startswith("the workflow could not go on after add[")


def test_an_empty_chain_in_a_message_fails_what_follows_it(app: Conveyor) -> None:
    after = SigNode("add", new_task_id(), args=(1,))
    message = Message(id=new_task_id(), task="add", args=(1, 2), chain=(ChainNode(steps=()), after))
    body = encode_message(message, app.conf.settings.task_message_max_size)
    app.broker.enqueue([Envelope(message.id, "celery", body)])
    run(app)
    assert app.runs == [("add", 1, 2)]  # type: ignore[attr-defined]
    assert "a chain with no steps" in failure(app, after.id).error.message  # type: ignore[union-attr]
    assert app.broker.queue_stats() == []


def chord_node(app: Conveyor, size: int, **body_kwargs: Any) -> tuple[ChainNode, GroupNode]:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    node = chord([add.s(i, i) for i in range(size)], tsum.s(**body_kwargs))._node()
    header = node.steps[0]
    assert isinstance(header, GroupNode)
    return node, header


def test_a_chord_whose_description_is_gone_fails_its_body(app: Conveyor) -> None:
    node, header = chord_node(app, 3)
    send_node(app, node)
    app.results.forget([header.id])  # expired (result_expires) or forgotten
    run(app)
    assert sorted(app.runs) == [("add", i, i) for i in range(3)]  # type: ignore[attr-defined]
    body = failure(app, result_ids(node)[0])
    assert "its description is not in the result store" in body.error.message  # type: ignore[union-attr]
    assert app.broker.queue_stats() == []  # every member acknowledged once


def test_a_member_sent_before_chord_joins_with_its_description_gone_is_acknowledged(
    app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    after_success(app, Links(chord="gone"), "m1", 1)  # an older message: no ChordJoin
    assert "chord gone: its description is not in the result store" in caplog.text


def test_a_chord_over_chord_max_size_is_refused_when_sent(app: Conveyor) -> None:
    app.conf.chord_max_size = 3
    node, header = chord_node(app, 4)
    with pytest.raises(WorkflowError, match=r"4 members, over the limit of 3 \(setting chord_max"):
        send_node(app, node)
    assert app.broker.queue_stats() == [] and app.results.get(header.id) is None
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    chord([add.s(1, 1)] * 3, tsum.s()).apply_async()  # at the limit: sent
    in_chain = chain(add.s(1, 1), group([add.s(2)] * 4), tsum.s()).apply_async()
    run(app)
    with pytest.raises(WorkflowError, match="over the limit of 3"):
        in_chain.get(timeout=1)  # sent by a worker: the workflow fails, the step is acked
    assert app.broker.queue_stats() == []


def count_reads(app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of stored values each get / get_many returned from now on."""
    store, reads = app.results, []
    get, get_many = store.get, store.get_many

    def counted_get(task_id: str) -> Outcome | None:
        found = get(task_id)
        reads.append(len(found.value or b"") if found else 0)
        return found

    def counted_get_many(task_ids: list[str]) -> dict[str, Outcome]:
        found = get_many(task_ids)
        reads.append(sum(len(o.value or b"") for o in found.values()))
        return found

    monkeypatch.setattr(store, "get", counted_get)
    monkeypatch.setattr(store, "get_many", counted_get_many)
    return reads


def sent(app: Conveyor) -> list[Message]:
    """The messages waiting in the default queue, celery (the chord's members)."""
    return [decode_message(s.envelope.body) for s in app.broker.list_messages("celery", limit=5000)]


@pytest.mark.parametrize("size", [10, 1000])
def test_joining_a_chord_reads_nothing_that_grows_with_its_header(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    node, _ = chord_node(app, size)
    send_node(app, node)
    members = sent(app)
    assert len(members) == size and members[0].join is not None
    assert len(msgspec.json.encode(members[0].join)) < 200  # carried: size and the body
    app.results.put([Outcome(m.id, TaskState.SUCCESS, value=b"1") for m in members])
    app.broker.purge(["celery"])  # the members ran: their joins are played below
    reads = count_reads(app, monkeypatch)
    for m in members[:-1]:
        after_success(app, m.links, m.id, 1, "add")
    assert reads == []  # members that do not complete the chord read nothing
    last = members[-1]
    after_success(app, last.links, last.id, 1, "add")
    assert len(reads) == 2 and reads[0] > 36 * size  # only the last reads the description
    run(app)
    assert app.AsyncResult(result_ids(node)[0]).get(timeout=1) == size


def test_a_failing_member_fails_the_body_without_reading_the_description(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, _ = chord_node(app, 100)
    send_node(app, node)
    first = sent(app)[0]
    reads = count_reads(app, monkeypatch)
    error = ErrorInfo("ZeroDivisionError", "boom")
    after_failure(app, first.links, "add", first.id, error)
    assert reads == []
    body = failure(app, result_ids(node)[0])
    assert body.reason == f"a member of the chord's header failed: add[{first.id}]"


def test_a_large_continuation_is_read_from_the_description_instead(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, _ = chord_node(app, 3, note="n" * INLINE_LIMIT)
    send_node(app, node)
    members = sent(app)
    assert {m.join.then if m.join else "none" for m in members} == {None}  # the size only
    reads = count_reads(app, monkeypatch)
    error = ErrorInfo("ZeroDivisionError", "boom")
    after_failure(app, members[0].links, "add", members[0].id, error)
    assert len(reads) == 1  # the description, read once
    assert failure(app, result_ids(node)[0]).error == chord_error(members[0].id, error)


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("note", ["", "n" * INLINE_LIMIT])  # the body carried, or not
def test_a_chord_body_nested_too_deep_is_refused_when_sent(app: Conveyor, note: str) -> None:
    node, header = chord_node(app, 2, extra=deep(600), note=note)
    with pytest.raises(EncodeError, match=r"chord body\[0\] \(tsum\) kwargs\['extra'\]\[0\]"):
        send_node(app, node)
    assert app.broker.queue_stats() == [] and app.results.get(header.id) is None
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    with pytest.raises(EncodeError, match=r"after the chord\[0\] \(add\) args\[0\]\[0\]"):
        chain(group(add.s(1, 1), add.s(2, 2)), tsum.s(), add.s(deep(600))).apply_async()
    assert app.broker.queue_stats() == []


def test_a_member_carrying_a_too_deep_chord_body_is_refused_by_check_call() -> None:
    then = (SigNode("tsum", "body", kwargs={"extra": deep(600)}),)
    member = Message(id="m", task="add", args=(1, 1), chord="c", join=ChordJoin(2, then))
    with pytest.raises(EncodeError, match=r"join\.then\[0\] \(tsum\) kwargs\['extra'\]\[0\]"):
        check_call(member)


def fail_to_send(app: Conveyor, monkeypatch: pytest.MonkeyPatch, exc: Exception) -> list[int]:
    """Make every enqueue of a call of task `add` with 5 as its last argument raise `exc`;
    returns a list that counts the attempts."""
    enqueue, attempts = app.broker.enqueue, []

    def refusing(envelopes: list[Envelope]) -> list[bool]:
        for e in envelopes:
            if e.body is not None and decode_message(e.body).args[-1:] == (5,):
                attempts.append(1)
                raise exc
        return enqueue(envelopes)

    monkeypatch.setattr(app.broker, "enqueue", refusing)
    return attempts


@pytest.mark.parametrize(
    "exc",
    [RecursionError("maximum recursion depth exceeded"), ValueError("zstd: corrupt frame")],
)
def test_any_follow_up_error_but_an_outage_fails_the_workflow_and_acks_the_step(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    add = app.tasks["add"]
    res = chain(add.s(1, 1), add.s(5), add.s(1)).apply_async()
    attempts = fail_to_send(app, monkeypatch, exc)
    run(app)
    assert app.runs == [("add", 1, 1)] and attempts == [1]  # type: ignore[attr-defined]
    assert app.broker.queue_stats() == []  # the step was acknowledged: it never runs again
    last = failure(app, res.id)
    assert last.error is not None and last.error.type == "WorkflowError"
    assert f"the next step cannot be sent: {type(exc).__name__}: {exc}" in last.error.message
    assert last.reason is not None and last.reason.startswith("the workflow could not go on")


def test_an_outage_while_moving_a_workflow_on_leaves_the_step_to_run_again(
    mem_app: Conveyor, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    @mem_app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    res = chain(add.s(1, 1), add.s(5)).apply_async()
    attempts = fail_to_send(mem_app, monkeypatch, BackendUnavailable("broker did not answer"))
    run(mem_app)
    assert isinstance(res, AsyncResult)
    assert attempts == [1] and res.outcome is None  # nothing failed: the step is held
    (stats,) = mem_app.broker.queue_stats()
    assert stats.leased == 1
    monkeypatch.undo()  # the outage is over; the lease runs out and the step runs again
    fake_clock.advance(mem_app.conf.settings.visibility_timeout + 1)
    run(mem_app)
    assert res.get(timeout=1) == 7 and mem_app.broker.queue_stats() == []


def test_marking_later_steps_failed_meets_an_error_the_step_is_acknowledged_all_the_same(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(name="boom")
    def boom() -> None:
        raise ZeroDivisionError("boom")

    node = chain(signature("boom", app=app), app.tasks["add"].s(1))._node()
    send_node(app, node)
    later = result_ids(node)[0]
    put = app.results.put

    def refusing(outcomes: list[Outcome]) -> list[bool]:
        if any(o.task_id == later for o in outcomes):
            raise ValueError("this store refuses that id")
        return put(outcomes)

    monkeypatch.setattr(app.results, "put", refusing)
    run(app)
    assert failure(app, result_ids(node.steps[0])[0]).error.type == "ZeroDivisionError"  # type: ignore[union-attr]
    assert app.broker.queue_stats() == []  # acknowledged: running it again changes nothing
    assert (
        f"the calls after boom[{result_ids(node.steps[0])[0]}] could not be marked" in caplog.text
    )
