"""Chains and groups on real worker processes, on SQLite, Redis and PostgreSQL: steps move on
from worker to worker through the broker, and the producer (another process) reads the
workflow's results."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, GroupResult, chain, group, signature

from .helpers import Where, wait_until, worker

pytestmark = pytest.mark.slow


@pytest.mark.every_backend
def test_chains_and_groups_across_two_workers(db: Where, reader: Conveyor) -> None:
    with (
        worker(db, "-P", "threads", "-c", "2", "-n", "a@%h"),
        worker(db, "-P", "process", "-c", "2", "-n", "b@%h"),
    ):
        wait_until(lambda: len(reader.broker.workers()) == 2, 60, "both workers ready")
        add = lambda *a: signature("sample.add", a, app=reader)  # noqa: E731
        mul = lambda *a: signature("sample.mul", a, app=reader)  # noqa: E731
        steps = chain(add(1, 1), *(mul(2) for _ in range(10))).apply_async()
        fanned = group(add(i, i) for i in range(40)).apply_async()
        mixed = group(chain(add(i, 1), mul(3)) for i in range(10)).apply_async()
        failed = chain(add(1, 2), signature("sample.fail", app=reader), mul(5)).apply_async()
        assert steps.get(timeout=60) == 2 * 2**10
        assert isinstance(fanned, GroupResult)
        assert fanned.get(timeout=60) == [2 * i for i in range(40)]
        assert mixed.get(timeout=60) == [3 * (i + 1) for i in range(10)]
        with pytest.raises(ValueError, match="cannot handle 3") as err:
            failed.get(timeout=60)
        assert any(
            "an earlier step of the chain failed: sample.fail" in n for n in err.value.__notes__
        )
        saved = fanned.save()
    restored = GroupResult.restore(saved.id, reader)
    assert restored is not None and restored.completed_count() == 40
    workers = {r.outcome.worker.split("@")[0] for r in fanned.results if r.outcome}  # type: ignore[union-attr]
    assert workers == {"a", "b"}
    assert reader.broker.queue_stats() == []
