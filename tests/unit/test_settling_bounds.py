"""One bad outcome must not poison a batch, and what a call returns is bounded: storable error
text and counts, the writer's split of a refused batch, retry counts beyond 64 bits, the
maximum result size and capped decompression. Real SQLite broker and store, no threads."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import pytest

from conveyor import Conveyor, Task
from conveyor.brokers.base import Envelope, MessageState
from conveyor.errors import BackendUnavailable, DecodeError
from conveyor.message import Message, decode_message, encode_message, new_task_id
from conveyor.results.base import MAX_COUNT, ErrorInfo, Outcome
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.executor import RunKind, RunResult
from conveyor.worker.policy import policy_for
from conveyor.worker.settle import Inflight, Settler


@pytest.fixture
def app(tmp_path: Path) -> Conveyor:
    app = Conveyor("bounds", broker=f"sqlite:///{tmp_path / 'b.db'}", set_as_current=False)

    @app.task(name="ok")
    def ok() -> int:
        return 1

    @app.task(name="parse")
    def parse(folder: str) -> None:
        for name in os.listdir(folder):  # the name holds b"\xff": it comes back as "\udcff"
            raise ValueError(f"cannot parse {name}")

    @app.task(name="again", bind=True, max_retries=None)
    def again(self: Task) -> None:
        raise self.retry(countdown=0)

    @app.task(name="big")
    def big(n: int) -> str:
        return "x" * n

    return app


def odd_folder(tmp_path: Path) -> str:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xff.csv")).write_text("a,b\n")
    return str(folder)


def test_an_exception_naming_an_undecodable_file_is_stored_with_its_text(
    app: Conveyor, tmp_path: Path
) -> None:
    failing = app.tasks["parse"].delay(odd_folder(tmp_path))
    fine = [app.tasks["ok"].delay() for _ in range(3)]
    solo_worker(app).run_until_idle()
    with pytest.raises(ValueError, match=r"cannot parse caf\\xff\.csv"):
        failing.get(timeout=1)
    assert failing.outcome is not None and failing.outcome.attempt == 1  # ran once
    assert [r.get(timeout=1) for r in fine] == [1, 1, 1]
    assert app.broker.queue_stats() == []  # every call acknowledged, none dead-lettered


def deliveries(app: Conveyor, names: list[str]) -> list[Inflight]:
    """Send one call per name and lease them all, as a worker would."""
    for name in names:
        app.send_task(name)
    leased = app.broker.reserve(["celery"], len(names), 30.0)
    items = []
    for delivery in leased:
        message = decode_message(delivery.envelope.body)
        items.append(
            Inflight(delivery, message, policy_for(app.tasks[message.task], app.conf.settings))
        )
    return items


def unstorable(message: str) -> ErrorInfo:
    """An error whose text no store takes: ErrorInfo's own escaping bypassed, as an outcome
    written by an older conveyor (or a bug) would hold it."""
    error = ErrorInfo("ValueError", "placeholder")
    object.__setattr__(error, "message", message)
    return error


def test_a_refused_outcome_merged_with_good_ones_affects_only_its_own_call(
    app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    items = deliveries(app, ["ok", "ok", "ok", "ok"])
    done = [RunResult(RunKind.SUCCESS, 1.0, 2.0, value=b"1") for _ in items]
    bad = RunResult(RunKind.FAILURE, 1.0, 2.0, error=unstorable("cannot parse caf\udcff.csv"))
    done[1] = bad
    settler = Settler(app.broker, app.results, "w@h", 1 << 20, app)
    settler.settle(list(zip(items, done, strict=True)))  # one merged plan of four calls
    outcomes = app.results.get_many([i.message.id for i in items])
    good = [outcomes[i.message.id] for i in items if i is not items[1]]
    assert [o.state for o in good] == [TaskState.SUCCESS] * 3
    refused = outcomes[items[1].message.id]
    assert refused.state is TaskState.FAILURE and refused.error is not None
    assert refused.error.type == "OutcomeNotStored"
    assert refused.error.message.startswith("the outcome could not be stored: UnicodeEncodeError")
    assert app.broker.queue_stats() == []  # all four acknowledged: none runs again
    assert "writing them one by one" in caplog.text
    caplog.text.encode("utf-8")  # the refused text is escaped in logs too


def test_a_refused_call_whose_failure_is_refused_too_is_dead_lettered_with_the_reason(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = deliveries(app, ["ok", "ok"])
    store_put = app.results.put

    def put(outcomes: list[Outcome]) -> list[bool]:
        if any(o.task_id == items[0].message.id for o in outcomes):
            raise ValueError("this store refuses that id")
        return store_put(outcomes)

    monkeypatch.setattr(app.results, "put", put)
    settler = Settler(app.broker, app.results, "w@h", 1 << 20, app)
    settler.settle([(i, RunResult(RunKind.SUCCESS, 1.0, 2.0, value=b"1")) for i in items])
    second = app.results.get(items[1].message.id)
    assert second is not None and second.state is TaskState.SUCCESS
    dead = app.broker.list_messages("celery", MessageState.DEAD)
    assert [d.envelope.id for d in dead] == [items[0].message.id]
    assert dead[0].reason == (
        "the outcome could not be stored: ValueError: this store refuses that id; the call ran "
        "and is not run again: fix what the result store refused (most often what the task "
        "returned or raised: make it smaller, plain data) and send the call again"
    )


@pytest.mark.parametrize(
    "outage",
    [
        BackendUnavailable("result store at redis://h did not answer"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_a_store_outage_is_not_a_verdict_the_calls_are_delivered_again(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch, outage: Exception
) -> None:
    items = deliveries(app, ["ok", "ok"])

    def put(outcomes: list[Outcome]) -> list[bool]:
        raise outage

    monkeypatch.setattr(app.results, "put", put)
    settler = Settler(app.broker, app.results, "w@h", 1 << 20, app)
    with pytest.raises(type(outage)):
        settler.settle([(i, RunResult(RunKind.SUCCESS, 1.0, 2.0, value=b"1")) for i in items])
    monkeypatch.undo()
    assert app.results.get_many([i.message.id for i in items]) == {}  # nothing marked FAILURE
    (stats,) = app.broker.queue_stats()
    assert stats.leased == 2  # still held: the leases run out and both are delivered again


def test_a_retry_count_beyond_64_bits_fails_the_call_clearly(app: Conveyor) -> None:
    message = Message(id=new_task_id(), task="again", retries=2**64 + 5)
    body = encode_message(message, app.conf.settings.task_message_max_size)
    app.broker.enqueue([Envelope(message.id, "celery", body)])
    near = Message(id=new_task_id(), task="again", retries=MAX_COUNT)
    body = encode_message(near, app.conf.settings.task_message_max_size)
    app.broker.enqueue([Envelope(near.id, "celery", body)])
    solo_worker(app).run_until_idle()
    for task_id in (message.id, near.id):
        outcome = app.results.get(task_id)
        assert outcome is not None and outcome.state is TaskState.FAILURE
        assert outcome.error is not None and outcome.error.type == "MaxRetriesExceededError"
        assert f"beyond the most conveyor counts ({MAX_COUNT})" in outcome.error.message
        assert outcome.retries == MAX_COUNT  # stored clamped: the put did not break
    assert app.broker.queue_stats() == []


def test_a_return_value_over_result_max_size_fails_the_call(app: Conveyor) -> None:
    app.conf.result_max_size = 1000
    over, under = app.tasks["big"].delay(2000), app.tasks["big"].delay(900)
    solo_worker(app).run_until_idle()
    with pytest.raises(
        Exception,
        match=r"2002 bytes encoded, over the limit of 1000 \(setting "
        r"result_max_size\)",
    ):
        over.get(timeout=1)
    assert under.get(timeout=1) == "x" * 900
    assert app.broker.queue_stats() == []


def test_a_stored_value_that_inflates_past_result_max_size_is_refused(app: Conveyor) -> None:
    bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"1]", mtime=0)  # 64 MiB from ~65 KB
    assert len(bomb) < 100_000
    app.results.put([Outcome("bomb", TaskState.SUCCESS, value=bomb)])
    with pytest.raises(DecodeError, match=r"more than 16777216 bytes .*result_max_size"):
        app.AsyncResult("bomb").get(timeout=1)
    app.conf.result_max_size = 65 << 20  # a reader allowing more reads it
    assert app.AsyncResult("bomb").get(timeout=1) == [1]
