"""Canvas as Celery's guide calls it, on real processes: a producer process importing the
project's tasks and a worker (`conveyor -A canvas_app worker`) with a process pool; callbacks
and errbacks run once, with Celery's arguments, even when the worker running their parents is
killed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from conveyor import Conveyor

from .canvas_app import ledger
from .helpers import Where, dir_of, python, start_worker, stop_worker, wait_until

pytestmark = pytest.mark.slow

PRODUCER = """
import json
from conveyor import chain, chord, group
from canvas_app import add, app, mul, tsum, fail, callback, on_error, error_handler, process

out = {}
res = chain(add.s(2, 2), add.s(4), mul.s(8))()
out["chain"] = res.get(timeout=60)
out["parents"] = [res.parent.get(timeout=60), res.parent.parent.get(timeout=60)]
out["group"] = group(add.s(i, i) for i in range(5))().get(timeout=60)
body = chord([add.s(1, 1), add.s(2, 2)])(tsum.s())
out["chord"] = [body.get(timeout=60), body.parent.get(timeout=60)]
out["map"] = tsum.map([[1, 2], [3, 4]]).delay().get(timeout=60)
out["starmap"] = add.starmap([(2, 2), (4, 4)]).delay().get(timeout=60)
out["chunks"] = add.chunks(zip(range(6), range(6)), 4)().get(timeout=60)
out["inline"] = add.s(2)(3)
sent_id = process.delay(3, callback=add.s(4)).get(timeout=60)
out["by_dict"] = app.AsyncResult(sent_id).get(timeout=60)
linked = add.apply_async((5, 5), link=callback.s("linked"))
out["linked"] = linked.get(timeout=60)
failed = fail.apply_async((7,), link_error=[error_handler.s(), on_error.s()])
out["failed"] = failed.id
failed.get(timeout=60, propagate=False)
print(json.dumps(out))
"""


@pytest.mark.every_backend
def test_canvas_calls_callbacks_and_errbacks_across_processes(db: Where, reader: Conveyor) -> None:
    path = dir_of(db) / "canvas-ledger.jsonl"
    proc = start_worker(db, "-P", "process", "-c", "2", app="canvas_app", CANVAS_LEDGER=str(path))
    try:
        wait_until(reader.broker.workers, 60, "the worker")
        out = json.loads(python(db, PRODUCER).stdout)
        assert out["chain"] == 64 and out["parents"] == [8, 4]
        assert out["group"] == [0, 2, 4, 6, 8]
        assert out["chord"] == [6, [2, 4]]
        assert out["map"] == [3, 7] and out["starmap"] == [4, 8]
        assert out["chunks"] == [[0, 2, 4, 6], [8, 10]]
        assert out["inline"] == 5 and out["linked"] == 10 and out["by_dict"] == 10
        wait_until(lambda: len(ledger(str(path))) >= 3, 60, "the callback and both errbacks")
    finally:
        stop_worker(proc)
    lines = {line["kind"]: line for line in ledger(str(path))}
    assert len(ledger(str(path))) == 3
    assert lines["CALLBACK"]["args"] == [10, "linked"]
    assert lines["ON_ERROR"]["failed"] == out["failed"]
    handled = lines["ERROR_HANDLER"]
    assert (handled["failed"], handled["task"], handled["args"]) == (
        out["failed"],
        "canvas.fail",
        [7],
    )
    assert handled["exc"] == "ValueError: cannot handle 7"
    assert "Traceback" in handled["traceback"] and "cannot handle 7" in handled["traceback"]
    assert reader.broker.queue_stats() == []


@pytest.mark.every_backend
def test_callbacks_run_once_when_the_worker_running_their_parents_is_killed(
    db: Where, reader: Conveyor
) -> None:
    path = dir_of(db) / "canvas-ledger.jsonl"
    env = {"CANVAS_LEDGER": str(path), "CANVAS_VISIBILITY": "2"}
    first = start_worker(db, "-P", "threads", "-c", "4", "-n", "first@%h", app="canvas_app", **env)
    try:
        wait_until(reader.broker.workers, 60, "the first worker")
        parents = [
            _signature(reader, "canvas.slow", 0.5 + i % 3 * 0.5).apply_async(
                link=_signature(reader, "canvas.callback", i),
                link_error=_signature(reader, "canvas.on_error"),
            )
            for i in range(12)
        ]
        wait_until(lambda: _count(path, "CALLBACK") >= 3 and _count(path, "START") >= 7, 60, "runs")
        first.send_signal(signal.SIGKILL)  # it holds parents it is running
        first.wait(10)
        second = start_worker(
            db, "-P", "threads", "-c", "4", "-n", "second@%h", app="canvas_app", **env
        )
        try:
            for parent in parents:
                assert parent.get(timeout=90) >= 1
            wait_until(lambda: len(_called(path)) == 12, 60, "every callback")
        finally:
            stop_worker(second)
    finally:
        stop_worker(first)
    runs = ledger(str(path))
    callbacks = [line for line in runs if line["kind"] == "CALLBACK"]
    # each callback was sent once, under one id: a second send would be delivered as attempt 1
    # again. A callback is a task like any other: one whose own delivery the kill cut off is
    # delivered again (a higher attempt), and only runs in the killed worker were repeated.
    attempts: dict[str, list[int]] = {}
    parent_of: dict[str, int] = {}
    for line in callbacks:
        attempts.setdefault(line["id"], []).append(line["attempt"])
        parent_of[line["id"]] = line["args"][1]
    assert sorted(parent_of.values()) == list(range(12))
    assert all(len(seen) == len(set(seen)) for seen in attempts.values()), attempts
    repeated = {i for i, seen in attempts.items() if len(seen) > 1}
    assert all(
        line["pid"] == first.pid
        for line in callbacks
        if line["id"] in repeated and line["attempt"] < max(attempts[line["id"]])
    )
    assert not [line for line in runs if line["kind"] == "ON_ERROR"]
    assert any(line["attempt"] > 1 for line in runs if line["kind"] == "START"), "a redelivery"
    assert reader.broker.queue_stats() == []


def _signature(app: Conveyor, name: str, *args: object):  # type: ignore[no-untyped-def]
    from conveyor import signature

    return signature(name, args, app=app)


def _called(path: Path) -> set[int]:
    """The parents whose callbacks have run."""
    return {line["args"][1] for line in ledger(str(path)) if line["kind"] == "CALLBACK"}


def _count(path: Path, kind: str) -> int:
    return sum(line["kind"] == kind for line in ledger(str(path)))
