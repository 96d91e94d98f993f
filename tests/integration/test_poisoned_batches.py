"""One bad outcome must not poison a batch, and a follow-up that can never succeed fails its
workflow: real worker processes on SQLite, Redis and PostgreSQL, with a ledger of every run."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from conveyor import Conveyor, chain, chord, signature
from conveyor.canvas.flow import send_node
from conveyor.canvas.nodes import GroupNode, result_ids
from conveyor.errors import WorkflowError

from .helpers import Where, dir_of, wait_until, worker
from .ledger import read_ledger

pytestmark = pytest.mark.slow


def starts(ledger: Path) -> collections.Counter[str]:
    return collections.Counter(r.task_id for r in read_ledger(ledger) if r.kind == "START")


@pytest.mark.every_backend
def test_an_error_naming_an_undecodable_file_fails_its_call_once_and_no_other(
    db: Where, reader: Conveyor
) -> None:
    folder = dir_of(db) / "inbox"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xff.csv")).write_text("a,b\n")
    ledger = dir_of(db) / "ledger.txt"
    with worker(db, "-P", "threads", "-c", "4", app="writer_app", SAMPLE_LEDGER=str(ledger)):
        wait_until(reader.broker.workers, 60, "the worker")
        good = [signature("writer.ok", app=reader) for _ in range(30)]
        sent = [s.apply_async() for s in good[:15]]
        bad = signature("writer.parse", (str(folder),), app=reader).apply_async()
        sent += [s.apply_async() for s in good[15:]]
        with pytest.raises(ValueError, match=r"cannot parse caf\\xff\.csv"):
            bad.get(timeout=60)
        assert [r.get(timeout=60) for r in sent] == [1] * 30  # each on its first attempt
        wait_until(lambda: reader.broker.queue_stats() == [], 30, "every call settled")
    runs = starts(ledger)
    assert runs[bad.id] == 1
    assert all(runs[r.id] == 1 for r in sent)


@pytest.mark.every_backend
def test_a_chain_whose_next_task_no_worker_knows_fails_after_one_run(
    db: Where, reader: Conveyor
) -> None:
    ledger = dir_of(db) / "ledger.txt"
    with worker(db, "-P", "threads", "-c", "2", SAMPLE_LEDGER=str(ledger)):
        wait_until(reader.broker.workers, 60, "the worker")
        first = signature("sample.ledgered", (0.0,), app=reader)
        res = chain(
            first,
            signature("reports.render", app=reader),
            signature("sample.add", (1,), app=reader),
        ).apply_async()
        with pytest.raises(WorkflowError, match=r".*unknown task 'reports\.render'"):
            res.get(timeout=60)  # the caller gets the reason, not PENDING for ever
        wait_until(lambda: reader.broker.queue_stats() == [], 30, "the step acknowledged")
    assert list(starts(ledger).values()) == [1]  # the step before ran once


def test_a_chord_whose_description_is_gone_fails_its_body_after_one_run_each(
    db: Where, reader: Conveyor
) -> None:
    ledger = dir_of(db) / "ledger.txt"
    env = {"SAMPLE_LEDGER": str(ledger)}
    with worker(db, "-P", "threads", "-c", "4", **env):
        wait_until(reader.broker.workers, 60, "the worker")
        header = [
            signature("sample.ledgered", (0.0,), app=reader).set(countdown=2) for _ in range(5)
        ]
        node = chord(header, signature("sample.chord_body", app=reader))._node()
        send_node(reader, node)
        group = node.steps[0]
        assert isinstance(group, GroupNode)
        reader.results.forget([group.id])  # gone before any member runs (they wait 2 s)
        body = reader.AsyncResult(result_ids(node)[0])
        with pytest.raises(WorkflowError, match="its description is not in the result store"):
            body.get(timeout=60)
        wait_until(lambda: reader.broker.queue_stats() == [], 30, "every member acknowledged")
    runs = read_ledger(ledger)
    assert (
        sorted(collections.Counter(r.task_id for r in runs if r.kind == "START").values())
        == [1] * 5
    )
    assert not [r for r in runs if r.kind == "BODY"]
