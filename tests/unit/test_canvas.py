"""Signatures, chains, groups and chords, run by an in-process worker step by step (and eagerly)."""

from __future__ import annotations

import pytest

from conveyor import AsyncResult, Conveyor, GroupResult, chain, chord, group, signature
from conveyor.canvas.flow import after_success, send_node
from conveyor.canvas.nodes import GroupNode, result_ids
from conveyor.errors import ChordError, ConfigurationError, TimeoutError
from conveyor.message import Links
from conveyor.testing import solo_worker


@pytest.fixture
def app() -> Conveyor:
    app = Conveyor("canvas", broker="memory://", set_as_current=False)

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="boom")
    def boom(x: int) -> int:
        raise ZeroDivisionError(f"boom on {x}")

    @app.task(name="tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    return app


def run(app: Conveyor) -> None:
    solo_worker(app).run_until_idle()


def test_partial_and_immutable_signatures(app: Conveyor) -> None:
    add = app.tasks["add"]
    res = add.s(2).delay(3)  # partial: the call's args come first
    run(app)
    assert res.get(timeout=1) == 5
    sig = add.si(1, 1).set(queue="other", priority=5)
    assert (sig.queue, sig.priority, sig.immutable) == ("other", 5, True)
    assert signature("add", (4, 4), app=app).apply_async().id
    run(app)


def test_a_chain_passes_each_result_on(app: Conveyor) -> None:
    add, mul = app.tasks["add"], app.tasks["mul"]
    res = chain(add.s(2, 2), mul.s(10), add.s(1)).apply_async()
    run(app)
    assert res.get(timeout=1) == 41  # ((2 + 2) * 10) + 1
    piped = (add.s(1, 1) | add.si(5, 5) | mul.s(3)).delay()
    run(app)
    assert piped.get(timeout=1) == 30  # the immutable step ignores 2


def test_a_failing_step_stops_the_chain_and_names_itself(app: Conveyor) -> None:
    add, boom, mul = app.tasks["add"], app.tasks["boom"], app.tasks["mul"]
    res = chain(add.s(1, 1), boom.s(), mul.s(2), add.s(3)).apply_async()
    run(app)
    with pytest.raises(ZeroDivisionError, match="boom on 2"):
        res.get(timeout=1)  # the failed step's own error, found through res.parent (Celery's)
    assert isinstance(res, AsyncResult)
    with pytest.raises(ZeroDivisionError, match="boom on 2") as err:
        res.get(timeout=1, follow_parents=False)  # the last step's own outcome names it
    assert any(
        "an earlier step of the chain failed: boom[" in n
        for n in getattr(err.value, "__notes__", [])
    )
    assert app.broker.queue_stats() == []  # mul and add were never sent


def test_a_group_runs_every_member_and_keeps_their_order(app: Conveyor) -> None:
    add = app.tasks["add"]
    res = group(add.s(i, i) for i in range(5)).apply_async()
    assert isinstance(res, GroupResult) and len(res) == 5
    assert not res.ready() and res.completed_count() == 0
    with pytest.raises(TimeoutError):
        res.get(timeout=0.05)
    run(app)
    assert res.get(timeout=1) == [0, 2, 4, 6, 8]
    assert res.ready() and res.successful() and not res.failed() and res.completed_count() == 5
    assert res.join(timeout=1) == [0, 2, 4, 6, 8]


def test_a_group_with_a_failed_member(app: Conveyor) -> None:
    add, boom = app.tasks["add"], app.tasks["boom"]
    res = group(add.s(1, 1), boom.s(3), add.s(2, 2)).apply_async()
    run(app)
    assert res.ready() and res.failed() and not res.successful()
    assert res.completed_count() == 2
    with pytest.raises(ZeroDivisionError):
        res.get(timeout=1)
    values = res.get(timeout=1, propagate=False)
    assert values[0] == 2 and isinstance(values[1], ZeroDivisionError) and values[2] == 4


def test_a_group_is_saved_and_restored_by_id(app: Conveyor) -> None:
    add = app.tasks["add"]
    res = group([add.s(1, 2), add.s(3, 4)]).apply_async().save()
    run(app)
    again = GroupResult.restore(res.id, app)
    assert again is not None and again.get(timeout=1) == [3, 7]
    assert GroupResult.restore("never-saved", app) is None


def test_chains_inside_groups_and_a_group_at_the_end_of_a_chain(app: Conveyor) -> None:
    add, mul = app.tasks["add"], app.tasks["mul"]
    res = group(chain(add.s(1, 1), mul.s(10)), add.s(5, 5) | mul.s(2)).apply_async()
    run(app)
    assert res.get(timeout=1) == [20, 20]
    fanned = chain(add.s(2, 3), group(mul.s(2), mul.s(3))).apply_async()
    assert isinstance(fanned, GroupResult)
    run(app)
    assert fanned.get(timeout=1) == [10, 15]


def test_a_chord_runs_its_body_once_with_every_header_result(app: Conveyor) -> None:
    add, tsum, mul = app.tasks["add"], app.tasks["tsum"], app.tasks["mul"]
    res = chord((add.s(i, i) for i in range(6)), tsum.s()).apply_async()
    run(app)
    assert res.get(timeout=1) == 30
    called = chord([add.s(1, 1), chain(add.s(2, 2), mul.s(10))])(tsum.s())
    upgraded = chain(group(add.s(1, 1), add.s(2, 2)), tsum.s(), mul.s(100)).apply_async()
    run(app)
    assert called.get(timeout=1) == 42
    assert upgraded.get(timeout=1) == 600  # chain(group, body) is a chord, then more steps


def test_a_chord_after_a_step_and_a_chord_inside_a_group(app: Conveyor) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    res = chain(add.s(1, 1), chord([add.s(10), add.s(20)], tsum.s())).apply_async()
    nested = group(chord([add.s(1, 1), add.s(1, 2)], tsum.s()), add.s(5, 5)).apply_async()
    run(app)
    assert res.get(timeout=1) == 34  # (2 + 10) + (2 + 20)
    assert nested.get(timeout=1) == [5, 10]


def test_a_failing_header_member_fails_the_chord(app: Conveyor) -> None:
    add, boom, tsum, mul = app.tasks["add"], app.tasks["boom"], app.tasks["tsum"], app.tasks["mul"]
    res = chain(chord([add.s(1, 1), boom.s(7), add.s(2, 2)], tsum.s()), mul.s(2)).apply_async()
    run(app)
    with pytest.raises(ZeroDivisionError, match="boom on 7"):
        res.get(timeout=1)  # the member's error, through res.parent (the header), as Celery's
    assert isinstance(res, AsyncResult)
    with pytest.raises(ChordError) as err:  # the steps' own outcome: Celery's ChordError
        res.get(timeout=1, follow_parents=False)
    assert chord_error_text(err.value).endswith("raised ZeroDivisionError('boom on 7')")
    assert any(
        "a member of the chord's header failed: boom[" in n
        for n in getattr(err.value, "__notes__", [])
    )
    assert app.broker.queue_stats() == []  # the body and the step after it never ran
    in_chain = chord([add.s(1, 1), chain(add.s(1, 1), boom.s())], tsum.s()).apply_async()
    run(app)
    assert isinstance(in_chain, AsyncResult)
    with pytest.raises(ChordError) as err:
        in_chain.get(timeout=1, follow_parents=False)
    assert chord_error_text(err.value).endswith("raised ZeroDivisionError('boom on 2')")


def chord_error_text(exc: BaseException) -> str:
    """The message of a ChordError read back (the class itself: the reader has it loaded)."""
    assert isinstance(exc, ChordError), exc
    return str(exc)


def test_a_redelivered_header_member_does_not_run_the_body_twice(app: Conveyor) -> None:
    bodies: list[list[int]] = []

    @app.task(name="collect")
    def collect(values: list[int]) -> int:
        bodies.append(values)
        return len(bodies)

    add = app.tasks["add"]
    node = chord([add.s(1, 1), add.s(2, 2)], collect.s())._node()
    send_node(app, node)
    run(app)
    header = node.steps[0]
    assert isinstance(header, GroupNode)
    assert bodies == [[2, 4]]
    # each member runs again (its ack was lost) and joins again, in either order
    for member, value in zip(result_ids(header), (2, 4), strict=True):
        after_success(app, Links(chord=header.id), member, value)
    run(app)
    assert bodies == [[2, 4]] and app.broker.queue_stats() == []


def test_workflows_run_eagerly_too(app: Conveyor) -> None:
    app.conf.task_always_eager = True
    add, mul, boom = app.tasks["add"], app.tasks["mul"], app.tasks["boom"]
    assert chain(add.s(2, 2), mul.s(10)).apply_async().get(timeout=1) == 40
    assert group(add.s(i, 1) for i in range(3)).apply_async().get(timeout=1) == [1, 2, 3]
    failed = chain(boom.s(1), mul.s(2)).apply_async()
    with pytest.raises(ZeroDivisionError):
        failed.get(timeout=1)


def test_non_signatures_are_refused(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match=r"use task\.s"):
        chain(app.tasks["add"], app.tasks["mul"].s(2)).apply_async()  # type: ignore[arg-type]
