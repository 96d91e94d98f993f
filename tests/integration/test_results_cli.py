"""`result_extended`, `conveyor result ID` and `conveyor results` against outcomes written by
real worker processes, on SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from conveyor import Conveyor

from .helpers import Where, conveyor, wait_until, worker

pytestmark = pytest.mark.slow


def _cli(db: Where, *args: str) -> str:
    done = conveyor(db, "-A", "sample_app", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.every_backend
def test_extended_results_and_history_from_the_command_line(db: Where, reader: Conveyor) -> None:
    with worker(db, "-c", "2", SAMPLE_EXTENDED="1"):
        wait_until(reader.broker.workers, 60, "the worker")
        added = reader.send_task("sample.add", args=(2,), kwargs={"y": 3})
        failed = reader.send_task("sample.fail", args=("boom",))
        more = [reader.send_task("sample.add", args=(i, i)) for i in range(3)]
        assert added.get(timeout=60) == 5
        assert failed.get(timeout=60, propagate=False) is not None
        assert [r.get(timeout=60) for r in more] == [0, 2, 4]
    with worker(db, "-c", "1"):  # result_extended off: arguments are never written
        plain = reader.send_task("sample.mul", args=(6, 7))
        assert plain.get(timeout=60) == 42

    record = json.loads(_cli(db, "result", added.id, "--json"))
    assert record["task"] == "sample.add" and record["state"] == "SUCCESS"
    assert record["args"] == [2] and record["kwargs"] == {"y": 3} and record["result"] == 5
    assert record["worker"] and record["queue"] == "celery" and record["attempt"] == 1
    assert record["runtime"] is not None and record["finished_at"] >= record["started_at"]
    assert added.args == [2] and added.kwargs == {"y": 3} and added.name == "sample.add"
    assert added.date_done is not None and added.worker == record["worker"]
    text = _cli(db, "result", "show", failed.id)
    assert 'args: ["boom"]' in text and "ValueError: cannot handle 'boom'" in text
    assert plain.outcome is not None and plain.outcome.arguments is None
    assert plain.args is None and plain.kwargs is None
    assert "not stored (set result_extended=True" in _cli(db, "result", "--verbose", plain.id)

    failures = json.loads(_cli(db, "results", "--state", "failure", "--json"))
    assert [r["task_id"] for r in failures["results"]] == [failed.id]
    assert failures["results"][0]["error"]["type"] == "ValueError" and failures["next"] is None
    table = _cli(db, "results", "--state", "FAILURE")
    assert failed.id in table and "ValueError: cannot handle 'boom'" in table

    everything = json.loads(_cli(db, "results", "--since", "1h", "--json", "--limit", "100"))
    ids = [r["task_id"] for r in everything["results"]]
    assert ids[0] == plain.id and set(ids) == {added.id, failed.id, plain.id, *(r.id for r in more)}
    stamps = [r["stored_at"] for r in everything["results"]]
    assert stamps == sorted(stamps, reverse=True)

    walked: list[str] = []
    page = _cli(db, "results", "--task", "sample.add", "--limit", "3")
    while "more: add --before " in page:
        walked += [i for i in ids if i in page]
        cursor = page.rsplit("--before ", 1)[1].strip()
        page = _cli(db, "results", "--task", "sample.add", "--limit", "3", "--before", cursor)
    walked += [i for i in ids if i in page]
    assert sorted(walked) == sorted([added.id, *(r.id for r in more)])
    assert _cli(db, "results", "--since", "2099-01-01T00:00").strip() == "no stored outcomes match"
