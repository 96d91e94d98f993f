"""Chains, groups and chords on real worker processes, on SQLite, Redis and PostgreSQL: steps
move on from worker to worker through the broker, and the producer (another process) reads
the workflow's results."""

from __future__ import annotations

import functools
import signal
from pathlib import Path

import pytest

from conveyor import AsyncResult, Conveyor, GroupResult, Signature, chain, chord, group, signature

from .helpers import Where, dir_of, start_worker, stop_worker, wait_until, worker
from .ledger import read_ledger

pytestmark = pytest.mark.slow


@pytest.mark.every_backend
def test_chains_and_groups_across_two_workers(db: Where, reader: Conveyor) -> None:
    with (
        worker(db, "-P", "threads", "-c", "2", "-n", "a@%h"),
        worker(db, "-P", "process", "-c", "2", "-n", "b@%h"),
    ):
        wait_until(lambda: len(reader.broker.workers()) == 2, 60, "both workers ready")
        add = functools.partial(call, reader, "sample.add")
        mul = functools.partial(call, reader, "sample.mul")
        steps = chain(add(1, 1), *(mul(2) for _ in range(10))).apply_async()
        fanned = group(add(i, i) for i in range(40)).apply_async()
        mixed = group(chain(add(i, 1), mul(3)) for i in range(10)).apply_async()
        failed = chain(add(1, 2), signature("sample.fail", app=reader), mul(5)).apply_async()
        assert steps.get(timeout=60) == 2 * 2**10
        assert isinstance(fanned, GroupResult)
        assert fanned.get(timeout=60) == [2 * i for i in range(40)]
        assert mixed.get(timeout=60) == [3 * (i + 1) for i in range(10)]
        with pytest.raises(ValueError, match="cannot handle 3"):
            failed.get(timeout=60)  # the failed step's error, through failed.parent
        assert isinstance(failed, AsyncResult)
        with pytest.raises(ValueError, match="cannot handle 3") as err:
            failed.get(timeout=60, follow_parents=False)  # the last step's own outcome
        assert any(
            "an earlier step of the chain failed: sample.fail" in n
            for n in getattr(err.value, "__notes__", [])
        )
        saved = fanned.save()
        # eight half-second naps on four slots: neither worker can take them all alone, so
        # both must run members (which the fast group above cannot promise on a loaded host)
        naps = group(signature("sample.sleep", (0.5,), app=reader) for _ in range(8))
        napped = naps.apply_async()
        napped.get(timeout=60)
    restored = GroupResult.restore(saved.id, reader)
    assert restored is not None and restored.completed_count() == 40
    workers = {r.outcome.worker.split("@")[0] for r in napped.results if r.outcome}  # type: ignore[union-attr]
    assert workers == {"a", "b"}
    assert reader.broker.queue_stats() == []


@pytest.mark.every_backend
def test_a_chord_body_runs_once_when_a_worker_holding_header_tasks_is_killed(
    db: Where, reader: Conveyor
) -> None:
    ledger = dir_of(db) / "ledger.txt"
    env = {"SAMPLE_LEDGER": str(ledger), "SAMPLE_VISIBILITY": "2"}
    first = start_worker(db, "-P", "threads", "-c", "4", "-n", "first@%h", **env)
    try:
        wait_until(reader.broker.workers, 60, "the first worker")
        header = [signature("sample.ledgered", (1.0,), app=reader) for _ in range(12)]
        res = chord(header, signature("sample.chord_body", app=reader)).apply_async()
        wait_until(lambda: len(ended(ledger)) >= 4 and running(ledger), 60, "members in flight")
        first.send_signal(signal.SIGKILL)  # it holds the header members it is running
        first.wait(10)
        held = running(ledger)
        assert held, "the killed worker was running header members"
        with worker(db, "-P", "threads", "-c", "4", "-n", "second@%h", **env):
            assert res.get(timeout=90) == 12
    finally:
        stop_worker(first)
    runs = read_ledger(ledger)
    assert sum(r.kind == "BODY" for r in runs) == 1  # exactly once
    redelivered = {r.task_id for r in runs if r.kind == "START" and r.attempt > 1}
    assert held <= redelivered  # the members the kill cut off ran again, and joined once
    assert reader.broker.queue_stats() == []


def call(app: Conveyor, name: str, *args: int) -> Signature:
    return signature(name, args, app=app)


def ended(ledger: Path) -> set[str]:
    return {r.task_id for r in read_ledger(ledger) if r.kind == "END"}


def running(ledger: Path) -> set[str]:
    return {r.task_id for r in read_ledger(ledger) if r.kind == "START"} - ended(ledger)
