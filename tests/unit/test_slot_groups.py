"""Slot group specs, queue orders, and a worker with several groups driven step by step."""

from __future__ import annotations

from collections import Counter

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor.worker.slotspec import QueueOrder, Rotation, SlotSpec, parse_slot_spec
from conveyor.worker.worker import Worker, default_options


def test_spec_syntax() -> None:
    assert parse_slot_spec("high,default:3", None, "process") == SlotSpec(
        ("high", "default"), 3, "process"
    )
    assert parse_slot_spec("low", 2, "threads") == SlotSpec(("low",), 2, "threads")
    assert parse_slot_spec("low:1:solo", 4, "process") == SlotSpec(("low",), 1, "solo")
    assert parse_slot_spec("low::prefork", 4, "threads").pool == "process"
    weighted = parse_slot_spec("high=3,default:4", None, "threads", QueueOrder.WEIGHTED)
    assert weighted.weights == (3, 1) and weighted.describe() == "high=3,default=1:4:threads"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no queue named"),
        ("a:1:threads:x", "too many ':' parts"),
        ("a:0", "concurrency '0' is not a whole number"),
        ("a b", "'a b' is not a queue name"),
        ("a,a", "queue 'a' is listed twice"),
        ("a=2", "queue weights need --queue-order weighted"),
    ],
)
def test_malformed_specs_say_what_is_expected(text: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_slot_spec(text, 1, "threads")
    assert why in str(err.value)
    assert "expected QUEUE[,QUEUE…][:CONCURRENCY[:POOL]], e.g. -Q high,default:3" in str(err.value)


def test_strict_rotation_always_tries_the_written_order() -> None:
    rotation = Rotation(SlotSpec(("high", "default"), 2, "threads"))
    assert {rotation.next() for _ in range(5)} == {("high", "default")}


def test_weighted_rotation_leads_with_each_queue_in_proportion() -> None:
    spec = SlotSpec(("high", "default", "low"), 2, "threads", QueueOrder.WEIGHTED, (3, 2, 1))
    rotation = Rotation(spec)
    leads = [rotation.next() for _ in range(60)]
    assert Counter(order[0] for order in leads) == {"high": 30, "default": 20, "low": 10}
    assert all(sorted(order) == sorted(spec.queues) for order in leads)  # falls through to all
    assert [order[0] for order in leads[:6]] != ["high"] * 6  # interleaved, not in runs


def _app() -> tuple[Conveyor, list[str]]:
    app = Conveyor("groups", broker="memory://", backend="memory://", set_as_current=False)
    ran: list[str] = []

    @app.task(name="work")
    def work(label: str) -> None:
        ran.append(label)

    return app, ran


def test_each_group_reserves_only_from_its_queues_and_for_its_slots() -> None:
    app, ran = _app()
    groups = (SlotSpec(("high", "default"), 1, "solo"), SlotSpec(("low",), 1, "solo"))
    worker = Worker(app, default_options(app, name="w", groups=groups))
    for label, queue in [("l1", "low"), ("l2", "low"), ("d1", "default"), ("h1", "high")]:
        app.tasks["work"].apply_async((label,), queue=queue)
    worker.step()
    assert sorted(ran) == ["h1", "l1"]  # one slot each: high drained before default
    worker.run_until_idle()
    assert ran[2:] == ["d1", "l2"]
    assert worker.info().queues == ("high", "default", "low")
    assert worker.info().extra["groups"] == "high,default:1:solo low:1:solo"


def test_weighted_group_shares_slots_by_weight_under_backlog() -> None:
    app, ran = _app()
    spec = SlotSpec(("a", "b"), 1, "solo", QueueOrder.WEIGHTED, (2, 1))
    worker = Worker(app, default_options(app, name="w", groups=(spec,)))
    for n in range(12):
        app.tasks["work"].apply_async((f"a{n}",), queue="a")
        app.tasks["work"].apply_async((f"b{n}",), queue="b")
    for _ in range(9):
        worker.step()
    assert Counter(label[0] for label in ran[:9]) == {"a": 6, "b": 3}


def test_a_queue_in_two_groups_is_refused() -> None:
    app, _ = _app()
    groups = (SlotSpec(("a", "b"), 1, "solo"), SlotSpec(("b",), 1, "solo"))
    with pytest.raises(ConfigurationError, match="queue 'b' is in two slot groups"):
        default_options(app, name="w", groups=groups)
