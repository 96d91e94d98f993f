"""One message never takes a worker down, with real worker processes: malformed messages written
straight into storage (SQLite, Redis, PostgreSQL) under a live process-pool worker, mixed with
valid calls; the 600-deep call; a body carrying another call's id; a job the process pool
cannot send to its child. The ledger (ledger.py) records what really ran."""

from __future__ import annotations

import functools
import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from conveyor import Conveyor
from conveyor.brokers.base import Envelope, MessageState
from conveyor.errors import ChordError
from conveyor.message import Message, encode_message
from conveyor.request import request_for
from conveyor.states import TaskState
from conveyor.worker.jobs import Job
from conveyor.worker.process_pool import ProcessPool

from ..rawstore import kind_of, make_due, spoil
from .helpers import (
    HERE,
    Where,
    conveyor,
    env_for,
    log_of,
    python,
    start_worker,
    stop_worker,
    wait_until,
    worker,
)
from .ledger import read_ledger

pytestmark = pytest.mark.slow

HOUR = 3600.0
QUEUE = "celery"


def nested(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def body(mid: str, task: str = "sample.add", args: bytes = b"[1,2]", extra: bytes = b"") -> bytes:
    return b'{"id":"%s","task":"%s","args":%s%s}' % (mid.encode(), task.encode(), args, extra)


@dataclass(frozen=True)
class Bad:
    """One malformed message: how it is stored, and what its dead letter's reason must say."""

    name: str
    stored: bytes | None  # the body enqueued (None: a valid one, then a field is spoiled)
    expect: str
    field: str | None = None
    value: object = None


def bad_messages(kind: str) -> list[Bad]:
    """The malformed messages the fuzz writes on backend `kind`, each with its own reason."""
    cases = [
        Bad("not-json", b"\x00\xffnot json", "undecodable message body"),
        Bad("wrong-type", b'{"id":"%(id)s","task":5}', "Expected `str`, got `int` - at `$.task`"),
        Bad("args-object", body("%(id)s", args=b'{"x":1}'), "Expected `array`"),
        Bad("not-a-message", b"[1,2,3]", "Expected `object`, got `array`"),
        Bad("version", body("%(id)s", extra=b',"v":9'), "protocol version 9 is not supported"),
        Bad("deep-1000", body("%(id)s", args=b"[" + nested(1000) + b"]"), "too deeply to decode"),
        Bad("deep-600", body("%(id)s", args=b"[" + nested(600) + b"]"), "nested more than 100"),
        Bad("other-id", body("someone-else"), "carries id 'someone-else', not its envelope's"),
        Bad(
            "oversize",
            body("%(id)s", "sample.total", b"[[" + b"1," * 600_000 + b"1]]"),
            "over this worker's task_message_max_size of 1048576",
        ),
        Bad("unknown-task", body("%(id)s", "sample.nope"), "'sample.nope' is not registered"),
    ]
    if kind == "redis":
        cases += [
            Bad("no-body", None, "field b (body) is missing", "body", None),
            Bad(
                "priority",
                None,
                "field p (priority) is b'high', not an integer",
                "priority",
                "high",
            ),
            Bad("no-max", None, "field md (max_deliveries) is missing", "max_deliveries", None),
            Bad("max-text", None, "field md (max_deliveries) is b'x'", "max_deliveries", "x"),
            Bad("no-hash", None, "field b (body) is missing; field p (priority)", "record", None),
        ]
    else:
        cases.append(Bad("null-body", None, "unreadable message row: body is NULL", "body", None))
    if kind == "sqlite":  # its columns take any type
        cases += [
            Bad("text-body", None, "body is TEXT, not a BLOB", "body", '{"id":"x"}'),
            Bad("int-body", None, "body is INTEGER, not a BLOB", "body", 42),
            Bad("priority", None, "priority is 'high', not an integer", "priority", "high"),
            Bad("max-text", None, "max_deliveries is 'x', not an integer", "max_deliveries", "x"),
        ]
    return cases


#: The task each of these bad messages' FAILURE names: the body says it, and is the envelope's
#: own (the others name none, or are not checked here).
NAMED = {
    "deep-600": "sample.add",
    "oversize": "sample.total",
    "unknown-task": "sample.nope",
    "other-id": None,
    "not-json": None,
    "deep-1000": None,
}


def rejections(
    reader: Conveyor, reasons: dict[str, str], names: dict[str, str | None]
) -> dict[str, str]:
    """What is wrong with the FAILURE outcome stored under each dead letter's id, given its
    reason and (where `names` has it) the task it must name: none when all are right."""
    outcomes = reader.results.get_many(list(reasons))
    wrong = {}
    for mid, reason in reasons.items():
        o = outcomes.get(mid)
        named = names.get(mid, o.task_name if o else None)
        if o is None or o.state is not TaskState.FAILURE or o.error is None:
            wrong[mid] = f"outcome {o}"
        elif (o.error.type, o.error.message, o.task_name) != ("MessageRejected", reason, named):
            wrong[mid] = f"{o.error.type}: {o.error.message} (task {o.task_name})"
    return wrong


def inject(reader: Conveyor, bad: Bad, mid: str) -> None:
    """Store one malformed message delayed (no worker touches it), spoil it, make it due."""
    stored = bad.stored if bad.stored is not None else body(mid)
    broker = reader.broker
    assert broker.enqueue([Envelope(mid, QUEUE, stored % {b"id": mid.encode()}, delay=HOUR)])
    if bad.field is not None:
        spoil(broker, mid, bad.field, bad.value)
    make_due(broker, mid, QUEUE)


def send(db: Where, code: str, **extra: str) -> list[str]:
    return python(db, "import sample_app as s\n" + code, **extra).stdout.split()


def alive(proc: subprocess.Popen[str], then: Callable[[], bool]) -> bool:
    assert proc.poll() is None, f"the worker exited:\n{log_of(proc)[-3000:]}"
    return then()


def dead_with(reader: Conveyor, ids: list[str]) -> dict[str, str]:
    out = {}
    for mid in ids:
        found = reader.broker.get_message(mid)
        if found is not None and found.state is MessageState.DEAD:
            out[mid] = found.reason or ""
    return out


@pytest.mark.every_backend
def test_storage_fuzz_dead_letters_each_bad_message_and_runs_every_valid_call_once(
    db: Where, reader: Conveyor, backend_name: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    cases = bad_messages(kind_of(reader.broker))
    expected: dict[str, Bad] = {}
    valid: list[str] = []
    proc = start_worker(db, "-P", "process", "-c", "2", SAMPLE_LEDGER=str(ledger))
    try:
        for round_ in range(3):  # valid calls and malformed messages arrive together
            valid += send(db, "for _ in range(40): print(s.ledgered.delay(0.0).id)")
            for bad in cases:
                mid = f"bad-{bad.name}-{round_}"
                inject(reader, bad, mid)
                expected[mid] = bad
            valid += send(db, "for _ in range(10): print(s.ledgered.delay(0.0).id)")
        check = functools.partial(alive, proc)
        wait_until(
            lambda: check(lambda: len(reader.results.wait(valid, 1.0)) == len(valid)),
            120,
            "valid calls",
        )
        wait_until(
            lambda: check(lambda: len(dead_with(reader, list(expected))) == len(expected)),
            120,
            "dead letters",
        )
        exits = 0 if proc.poll() is None else 1  # the worker exiting by itself
    finally:
        stop_worker(proc)
    reasons = dead_with(reader, list(expected))
    own = [mid for mid, bad in expected.items() if bad.expect in reasons.get(mid, "")]
    runs = read_ledger(ledger)
    starts = {tid: sum(1 for r in runs if r.kind == "START" and r.task_id == tid) for tid in valid}
    once = [tid for tid in valid if starts[tid] == 1]
    outcomes = reader.results.get_many(valid)
    names = {mid: NAMED[bad.name] for mid, bad in expected.items() if bad.name in NAMED}
    failed = rejections(reader, reasons, names)
    print(
        f"\nstorage fuzz [{backend_name}]: bad messages={len(expected)} "
        f"({len(cases)} kinds x 3), dead-lettered with their own reason={len(own)}, "
        f"FAILURE (MessageRejected) under their id={len(reasons) - len(failed)}, "
        f"valid calls run exactly once={len(once)}/{len(valid)}, worker exits={exits} "
        f"(then stopped by SIGTERM: exit code {proc.returncode})"
    )
    wrong = {mid: reasons.get(mid) for mid in expected if mid not in own}
    assert wrong == {}, f"dead letters without their own reason: {wrong}"
    assert failed == {}, f"dead letters without their FAILURE outcome: {failed}"
    assert len(once) == len(valid)
    assert {o.state for o in outcomes.values()} == {TaskState.SUCCESS}
    assert exits == 0 and proc.returncode == 0
    assert "failed; stopping the worker" not in log_of(proc)
    listed = conveyor(db, "-A", "sample_app", "dlq", "list", "--json")  # the admin view reads them
    assert listed.returncode == 0, listed.stderr
    assert {d["id"] for d in json.loads(listed.stdout)} == set(expected)


def produce(db: Where, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sample_app as s\nv = 1\nfor _ in range(600): v = [v]\n" + code,
        ],
        cwd=HERE,
        env=env_for(db),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_600_deep_call_is_refused_at_the_call_site_and_a_stored_one_dead_lettered(
    db: Where, reader: Conveyor
) -> None:
    producer = produce(db, "s.total.delay(v)")
    assert producer.returncode == 1
    assert "EncodeError: args[0][0][0]" in producer.stderr
    assert "is nested more than 100 lists/dicts deep" in producer.stderr
    # the same data as an argument of a chord's body: refused too, before anything is stored
    producer = produce(
        db,
        "from conveyor import chord\n"
        "chord([s.add.s(1, 1), s.add.s(2, 2)], s.total.s(extra=v)).apply_async()",
    )
    assert producer.returncode == 1
    assert "EncodeError: chord body[0] (sample.total) kwargs['extra'][0]" in producer.stderr
    assert reader.broker.queue_stats() == []  # nothing was stored
    deep = body("deep", "sample.total", b"[" + nested(600) + b"]")
    # a chord member stored by something else, carrying such a body: dead-lettered, the body fails
    then = b',"chord":"c","join":{"size":1,"then":[{"type":"sig","task":"sample.total","id":"body",'
    member = body("member", extra=then + b'"kwargs":{"extra":' + nested(600) + b"}}]}")
    reader.broker.enqueue([Envelope("deep", QUEUE, deep), Envelope("member", QUEUE, member)])
    (after,) = send(db, "print(s.add.delay(2, 3).id)")
    with worker(db, "-P", "process", "-c", "1") as proc:
        assert reader.AsyncResult(after).get(timeout=60) == 5
        wait_until(
            lambda: len(dead_with(reader, ["deep", "member"])) == 2, 60, "the deep dead letters"
        )
        assert proc.poll() is None
    reasons = dead_with(reader, ["deep", "member"])
    assert "args[0][0]" in reasons["deep"]
    assert "join.then[0] (sample.total) kwargs['extra'][0]" in reasons["member"]
    assert rejections(reader, reasons, {"deep": "sample.total", "member": "sample.add"}) == {}
    # the chord's body is not left PENDING: it fails with Celery's ChordError naming the member
    with pytest.raises(
        ChordError, match=r"Dependency member raised MessageRejected\(.message refused: join\.then"
    ):
        reader.AsyncResult("body").get(timeout=10)
    assert proc.returncode == 0


def test_a_body_with_another_calls_id_is_dead_lettered_and_cannot_overwrite_it(
    db: Where, reader: Conveyor
) -> None:
    (victim,) = send(db, "print(s.add.delay(1, 2).id)")
    with worker(db, "-P", "process", "-c", "1") as proc:
        assert reader.AsyncResult(victim).get(timeout=60) == 3
        before = reader.results.get(victim)
        forged = encode_message(Message(id=victim, task="sample.add", args=(100, 100)), 1 << 20)
        reader.broker.enqueue([Envelope("intruder", QUEUE, forged)])
        wait_until(lambda: "intruder" in dead_with(reader, ["intruder"]), 60, "the dead letter")
        assert proc.poll() is None
    assert reader.results.get(victim) == before and reader.AsyncResult(victim).get() == 3
    reason = dead_with(reader, ["intruder"])["intruder"]
    assert f"carries id {victim!r}, not its envelope's 'intruder'" in reason
    assert rejections(reader, {"intruder": reason}, {"intruder": None}) == {}  # its own FAILURE


def test_the_process_pool_survives_a_job_it_cannot_send_to_its_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("CONVEYOR_BROKER_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    pool = ProcessPool("sample_app", 1)
    pool.start()
    try:

        def job(key: int, message: Message) -> Job:
            return Job(key, message, request_for(message, "test@local", 1))

        def run(key: int) -> int:
            pool.submit(job(key, Message(id=f"m{key}", task="sample.pid")))
            (done,) = pool.completions(60.0)
            assert done.key == key and done.result is not None and done.result.value is not None
            return int(msgspec.json.decode(done.result.value))

        child = run(1)
        v: object = 1
        for _ in range(600):
            v = [v]
        for unsendable in (v, lambda: None):
            with pytest.raises((RecursionError, AttributeError, pickle.PicklingError)):
                pool.submit(job(2, Message(id="m2", task="sample.total", args=(unsendable,))))
            assert pool.free_slots() == 1 and pool.busy_keys() == []
        assert run(3) == child  # the same child took the next job
    finally:
        pool.stop(5.0)
