"""The writer's fencing of follow-ups, and what it says when a refused batch is applied again
part by part: on the memory broker and result store with a FakeClock."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pytest

from conveyor.brokers.base import Delivery, Envelope
from conveyor.brokers.memory import MemoryBroker
from conveyor.clock import FakeClock
from conveyor.results.base import Outcome
from conveyor.results.memory import MemoryResultStore
from conveyor.states import TaskState
from conveyor.worker.writer import Plan, Writer


def parts(fake_clock: FakeClock) -> tuple[MemoryBroker, MemoryResultStore]:
    return MemoryBroker(fake_clock), MemoryResultStore(None, fake_clock)


def reserve(broker: MemoryBroker, *ids: str, queue: str = "default") -> list[Delivery]:
    broker.enqueue([Envelope(i, queue, b"{}") for i in ids])
    return broker.reserve([queue], len(ids), 30.0)


def test_the_follow_ups_of_a_stale_lease_are_dropped_even_without_an_outcome_to_write(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """`ignore_result` steps of a workflow write no outcome; a stale holder must still not send
    the next step (acked) or fail the rest of the workflow (dead-lettered, after_failure)."""
    broker, store = parts(fake_clock)
    ignored, buried = reserve(broker, "ignored", "buried")
    fake_clock.advance(31.0)  # both leases ran out: the broker will deliver them again
    (live,) = reserve(broker, "live", queue="other")
    followed: list[str] = []
    plan = Plan.merged(
        [
            Plan(
                acks=[ignored.lease],
                followups=[(ignored.lease, lambda: followed.append("next step of ignored"))],
            ),
            Plan(
                after=[lambda: followed.append("dead letter of buried")],
                followups=[(buried.lease, lambda: followed.append("rest of buried failed"))],
            ),
            Plan(acks=[live.lease], followups=[(live.lease, lambda: followed.append("live"))]),
        ]
    )
    with caplog.at_level(logging.WARNING, "conveyor.worker"):
        Writer(broker, store).apply(plan)
    # the broker fences the dead letter itself (a stale token changes nothing)
    assert followed == ["live", "dead letter of buried"]
    assert "outcome of ignored not recorded: lease lost" in caplog.text
    assert "outcome of buried not recorded: lease lost" in caplog.text
    assert broker.confirm([ignored.lease, buried.lease, live.lease]) == [False, False, False]
    again = broker.reserve(["default"], 3, 30.0)  # both stale calls are delivered again
    assert sorted(d.envelope.id for d in again) == ["buried", "ignored"]


def refused_once(what: list[str], name: str) -> Callable[[], None]:
    """A release or dead letter the broker refuses the first time (e.g. a reason it cannot
    store), then takes."""

    def step() -> None:
        what.append(name)
        if what.count(name) == 1:
            raise ValueError(f"{name} refused")

    return step


def test_a_batch_refused_after_its_acks_does_not_report_acked_calls_as_lost(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    broker, store = parts(fake_clock)
    a, b, d = reserve(broker, "a", "b", "d")
    done: list[str] = []
    written: list[str] = []
    put = store.put

    def recording(outcomes: Sequence[Outcome]) -> list[bool]:
        written.extend(o.task_id for o in outcomes)
        return put(outcomes)

    store.put = recording  # type: ignore[method-assign]

    def success(delivery: Delivery) -> list[Outcome]:
        return [Outcome(delivery.envelope.id, TaskState.SUCCESS, token=delivery.lease.token)]

    first = Plan.merged(
        [
            Plan(puts=success(a), acks=[a.lease]),
            Plan(puts=success(b), after=[refused_once(done, "release of b")]),
        ]
    )
    batch = Plan.merged([first, Plan(puts=success(d), acks=[d.lease])])
    with caplog.at_level(logging.INFO, "conveyor.worker"):
        Writer(broker, store).apply_safely(batch)
    assert done == ["release of b", "release of b"]  # refused, then applied again, taken
    # d was acked whole by the refused attempt: not applied again; a was acked too, but shares
    # a part with b, so it is applied again and its lease is found gone — and said so truly
    assert written == ["a", "b", "d", "b"]
    assert "not recorded" not in caplog.text and "lease lost" not in caplog.text
    assert "a not settled again: its lease" in caplog.text
    assert "Expected when the refused batch it was part of acknowledged it" in caplog.text
    assert [store.get(i) is not None for i in "abd"] == [True, True, True]
    assert broker.confirm([a.lease, d.lease]) == [False, False]  # acked once, by the first try
