"""Execution guarantees with real worker processes: chaos, fencing, poison, time limits,
recycling, durable revoke and global rate limits. Chaos, fencing and poison run on every
backend (SQLite, Redis, PostgreSQL); the rest on SQLite. The ledger (ledger.py) records what
really ran, outside the broker."""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.brokers.base import Lease, MessageState
from conveyor.states import TaskState

from .helpers import (
    Where,
    _children,
    _cmdline,
    conveyor,
    log_of,
    pause,
    pool_children,
    python,
    start_worker,
    stop_worker,
    wait_until,
    worker,
)
from .ledger import check, count, read_ledger

pytestmark = pytest.mark.slow


def send(db: Where, code: str, **extra: str) -> list[str]:
    """Run a producer snippet that prints task ids; return them."""
    return python(db, "import sample_app as s\n" + code, **extra).stdout.split()


def wait_dead(reader: Conveyor, message_id: str) -> None:
    def dead() -> bool:
        m = reader.broker.get_message(message_id)
        return m is not None and m.state is MessageState.DEAD

    wait_until(dead, 90, f"{message_id} to be dead-lettered")


def forkservers(pid: int) -> set[int]:
    return {k for k in _children(pid) if b"forkserver" in _cmdline(k)}


@pytest.mark.every_backend
def test_chaos_kills_lose_nothing_and_every_repeat_follows_a_kill(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    env = {"SAMPLE_LEDGER": str(ledger), "SAMPLE_VISIBILITY": "2", "SAMPLE_GRACE": "5"}
    ids = send(db, "for i in range(2000): print(s.ledgered.delay(0.004).id)")
    rng = random.Random(20261121)
    args = ("-P", "process", "-c", "2")
    workers = [start_worker(db, *args, "-n", f"w{i}@%h", **env) for i in range(2)]
    killed: set[int] = set()
    killed_mains: set[int] = set()
    deadline = time.monotonic() + 240
    step = 2000 // 30

    def progress(target: int) -> bool:
        for w in workers:  # a worker may only stop because the test killed it
            assert w.poll() is None, f"worker {w.pid} exited by itself:\n{log_of(w)[-3000:]}"
        return count(ledger, "END") >= target

    try:
        for n in range(1, 30):
            wait_until(functools.partial(progress, n * step), 120, f"{n * step} runs")
            slot = rng.randrange(len(workers))
            main = workers[slot]
            kids = pool_children(main.pid)
            if kids and rng.random() < 0.7:
                victim = rng.choice(kids)
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
            else:
                killed_mains.update({main.pid} | forkservers(main.pid))
                main.kill()
                main.wait(10)
                killed.add(main.pid)
                workers[slot] = start_worker(db, *args, "-n", f"w{slot}-{n}@%h", **env)
        wait_until(
            lambda: len(reader.results.wait(ids, timeout=1.0)) == len(ids),
            max(1.0, deadline - time.monotonic()),
            "every call to finish",
        )
    finally:
        for w in workers:
            stop_worker(w)
    report = check(read_ledger(ledger), ids, killed, killed_mains)
    print(f"\nchaos: {report}")
    assert report.kills >= 20
    assert report.lost == []
    assert report.unexplained == []
    outcomes = reader.results.get_many(ids)
    assert {o.state for o in outcomes.values()} == {TaskState.SUCCESS}
    repeated = {o.task_id for o in outcomes.values() if o.attempt > 1}
    assert set(report.duplicates) <= repeated  # every repeat is a recorded redelivery


@pytest.mark.every_backend
def test_a_stopped_worker_cannot_ack_or_overwrite_the_new_owner(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    env = {"SAMPLE_LEDGER": str(ledger), "SAMPLE_VISIBILITY": "1.5"}
    (task_id,) = send(db, "print(s.ledgered.delay(2.0).id)")
    stale = start_worker(db, "-P", "threads", "-c", "1", "-n", "stale@%h", **env)
    try:
        wait_until(lambda: count(ledger, "START") == 1, 60, "the first run to start")
        pause(stale, db)  # past its lease: it cannot renew
        with worker(db, "-P", "threads", "-c", "1", "-n", "owner@%h", **env):
            wait_until(
                lambda: (o := reader.results.get(task_id)) is not None and o.state.ready,
                60,
                "the new owner's outcome",
            )
        owner_outcome = reader.results.get(task_id)
        assert owner_outcome is not None and owner_outcome.worker is not None
        assert owner_outcome.worker.startswith("owner@") and owner_outcome.attempt == 2
        stale.send_signal(signal.SIGCONT)
        wait_until(lambda: "lease lost" in log_of(stale), 10, "the stale worker to notice")
        wait_until(lambda: count(ledger, "END") == 2, 30, "the stale run to finish")
        wait_until(
            lambda: "not recorded" in log_of(stale) or "refused" in log_of(stale),
            10,
            "the stale worker to give up its result",
        )
    finally:
        stale.send_signal(signal.SIGCONT)
        stop_worker(stale)
    final = reader.results.get(task_id)
    assert final == owner_outcome  # the stale worker's write was refused
    assert reader.broker.queue_stats() == []


def read_puts(path: Path, task_id: str) -> list[tuple[str, int]]:
    """The outcomes of `task_id` a worker's result store accepted, in order (sample_app's
    SAMPLE_PUTS): (state, token)."""
    if not path.exists():
        return []
    found = [line.split() for line in path.read_text().splitlines()]
    return [(state, int(token)) for tid, state, token in found if tid == task_id]


@pytest.mark.every_backend
def test_a_worker_paused_past_its_lease_writes_one_outcome_when_its_message_comes_back(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger, puts = tmp_path / "ledger.txt", tmp_path / "puts.txt"
    env = {"SAMPLE_LEDGER": str(ledger), "SAMPLE_VISIBILITY": "1.5", "SAMPLE_PUTS": str(puts)}
    (task_id,) = send(db, "print(s.ledgered.delay(1.0).id)")
    only = start_worker(db, "-P", "threads", "-c", "1", "-n", "only@%h", **env)  # no other
    try:
        wait_until(lambda: count(ledger, "START") == 1, 60, "the first run to start")
        wait_until(lambda: read_puts(puts, task_id), 30, "the first run's STARTED")
        ((_, first_token),) = read_puts(puts, task_id)
        pause(only, db)  # it can renew nothing now
        first = Lease(task_id, first_token, 0.0)
        wait_until(
            lambda: reader.broker.confirm([first]) == [False],
            30,
            "the paused worker's lease to run out on the broker's clock",
        )
        only.send_signal(signal.SIGCONT)  # its run ends; its own message is due again
        wait_until(lambda: reader.broker.queue_stats() == [], 60, "the call to be settled")
    finally:
        only.send_signal(signal.SIGCONT)
        stop_worker(only)
    runs = read_ledger(ledger)
    starts = [r for r in runs if r.kind == "START"]
    assert 1 <= len(starts) <= 2 and {r.pid for r in runs} == {only.pid}
    written = read_puts(puts, task_id)
    states = [state for state, _ in written]
    assert states.count("SUCCESS") == 1 and states[-1] == "SUCCESS", written  # written once…
    tokens = [token for _, token in written]
    assert tokens == sorted(tokens), written  # …and never under an older lease after a newer
    outcome = reader.results.get(task_id)
    assert outcome is not None and outcome.state is TaskState.SUCCESS
    assert outcome.token == written[-1][1] and outcome.attempt == len(starts)
    assert "not recorded" in log_of(only)  # the first run's result was dropped, and said so


@pytest.mark.every_backend
def test_a_poison_task_is_dead_lettered_while_others_flow(db: Where, reader: Conveyor) -> None:
    (poison,) = send(db, "print(s.kill_self.delay().id)")
    normal = send(db, "for i in range(60): print(s.add.delay(i, 1).id)")
    with worker(db, "-P", "process", "-c", "2"):
        wait_dead(reader, poison)
        assert len(reader.results.wait(normal, timeout=60)) == 60
    dead = reader.broker.get_message(poison)
    assert dead is not None and dead.attempts == 5 and "max_deliveries" in (dead.reason or "")
    listed = json.loads(conveyor(db, "-A", "sample_app", "dlq", "list", "--json").stdout)
    assert [d["id"] for d in listed] == [poison] and listed[0]["task"] == "sample.kill_self"
    shown = conveyor(db, "-A", "sample_app", "dlq", "show", poison)
    assert "max_deliveries" in shown.stdout and "exited with code -9" in shown.stdout
    assert conveyor(db, "-A", "sample_app", "dlq", "purge", "-f").returncode == 0
    assert reader.broker.get_message(poison) is None


def test_process_pool_soft_and_hard_limits(db: Where, reader: Conveyor) -> None:
    soft, hard = send(db, "print(s.soft_limited.delay().id)\nprint(s.hard_limited.delay().id)")
    after = send(db, "for _ in range(4): print(s.pid.delay().id)")
    with worker(db, "-P", "process", "-c", "1"):
        assert reader.AsyncResult(soft).get(timeout=60) == "cleaned up"
        found = reader.results.wait([hard, *after], timeout=60)
    o = found[hard]
    assert o.state is TaskState.FAILURE and o.error is not None
    assert o.error.type == "TimeLimitExceeded" and o.attempt == 1
    assert all(found[i].state is TaskState.SUCCESS for i in after)  # a new child took over


def test_recycling_every_task_loses_and_repeats_nothing(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    ids = send(db, "for _ in range(500): print(s.ledgered.delay(0).id)")
    with worker(
        db, "-P", "process", "-c", "2", "--max-tasks-per-child", "1", SAMPLE_LEDGER=str(ledger)
    ):
        found = reader.results.wait(ids, timeout=150)
    assert len(found) == 500
    report = check(read_ledger(ledger), ids, set(), set())
    assert (report.lost, report.duplicates) == ([], [])
    assert len({r.pid for r in read_ledger(ledger)}) == 500  # one child per task


def test_recycling_by_memory(db: Where, reader: Conveyor) -> None:
    ids = send(db, "for _ in range(4): print(s.hog.delay(80).id)")
    with worker(db, "-P", "process", "-c", "1", "--max-memory-per-child", "60000"):
        found = reader.results.wait(ids, timeout=90)
    assert all(o.state is TaskState.SUCCESS and o.attempt == 1 for o in found.values())
    pids = [reader.AsyncResult(i).get(timeout=1) for i in ids]
    assert len(set(pids)) == 4  # each child passed 60 MB and was replaced after its task


def test_expired_calls_are_never_started(db: Where, reader: Conveyor, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    stale = send(db, "for _ in range(3): print(s.ledgered.apply_async((0,), expires=0.01).id)")
    (fresh,) = send(db, "print(s.ledgered.apply_async((0,), expires=600).id)")
    (marker,) = send(db, "import time\ntime.sleep(0.05)\nprint(s.add.delay(1, 1).id)")
    with worker(db, "-P", "threads", "-c", "1", SAMPLE_LEDGER=str(ledger)):
        found = reader.results.wait([*stale, fresh, marker], timeout=60)
    assert all(found[i].state is TaskState.REVOKED and found[i].reason == "expired" for i in stale)
    assert found[fresh].state is TaskState.SUCCESS
    assert {r.task_id for r in read_ledger(ledger)} == {fresh}


def test_revoke_is_durable_across_worker_restarts(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    env = {"SAMPLE_LEDGER": str(ledger)}
    (waiting,) = send(db, "print(s.ledgered.apply_async((0,), countdown=1).id)")
    revoked = conveyor(db, "-A", "sample_app", "control", "revoke", waiting, "not-sent-yet")
    assert revoked.returncode == 0 and "will never run" in revoked.stdout
    (first,) = send(db, "print(s.ledgered.delay(0).id)")
    with worker(db, "-P", "threads", "-c", "1", **env):
        assert reader.AsyncResult(first).get(timeout=60) == 1
    # A producer sends both again (a retry after a timeout); a new worker starts later.
    again = send(
        db,
        f"print(s.ledgered.apply_async((0,), task_id={waiting!r}).id)\n"
        "print(s.ledgered.apply_async((0,), task_id='not-sent-yet').id)\n"
        "print(s.ledgered.delay(0).id)",
    )
    with worker(db, "-P", "threads", "-c", "1", **env):
        assert reader.AsyncResult(again[2]).get(timeout=60) == 1
    ran = {r.task_id for r in read_ledger(ledger)}
    assert ran == {first, again[2]}
    assert reader.AsyncResult(waiting).state is TaskState.REVOKED


def test_revoke_terminate_kills_a_running_call(db: Where, reader: Conveyor, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    (task_id,) = send(db, "print(s.ledgered.delay(60).id)")
    with worker(db, "-P", "process", "-c", "1", SAMPLE_LEDGER=str(ledger), SAMPLE_VISIBILITY="1.5"):
        wait_until(lambda: count(ledger, "START") == 1, 60, "the call to start")
        out = conveyor(db, "-A", "sample_app", "control", "revoke", "--terminate", task_id)
        assert "killed" in out.stdout
        outcome = reader.results.wait([task_id], timeout=30)[task_id]
    assert outcome.state is TaskState.REVOKED and outcome.reason == "terminated"
    assert count(ledger, "END") == 0


def test_global_rate_limit_holds_across_three_workers(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    send(db, "for _ in range(480): s.limited.delay()")
    procs = [
        start_worker(db, "-P", "threads", "-c", "2", "-n", f"r{i}@%h", SAMPLE_LEDGER=str(ledger))
        for i in range(3)
    ]
    try:
        wait_until(lambda: count(ledger, "START") >= 1, 60, "the first start")
        t0 = min(r.at for r in read_ledger(ledger))
        wait_until(lambda: max(r.at for r in read_ledger(ledger)) >= t0 + 12, 60, "12 s of starts")
    finally:
        for p in procs:
            stop_worker(p)
    runs = read_ledger(ledger)
    window = [r for r in runs if t0 + 1 <= r.at < t0 + 11]
    by_pid = {r.pid for r in window}
    print(f"\nrate limit 30/s: {len(window)} starts in 10 s from {len(by_pid)} processes")
    assert len(by_pid) == 3
    assert 270 <= len(window) <= 330


def test_redrive_puts_dead_letters_back(db: Where, reader: Conveyor) -> None:
    (poison,) = send(db, "print(s.kill_self.apply_async().id)")
    with worker(db, "-P", "process", "-c", "1"):
        wait_dead(reader, poison)
    out = conveyor(db, "-A", "sample_app", "dlq", "redrive", "--all")
    assert out.returncode == 0 and "redrove 1" in out.stdout
    m = reader.broker.get_message(poison)
    assert m is not None and m.state is MessageState.READY
    bad = conveyor(db, "-A", "sample_app", "dlq", "redrive")
    assert bad.returncode == 2 and "--all" in bad.stderr


def test_at_most_once_call_cut_off_is_recorded_not_repeated(
    db: Where, reader: Conveyor, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    (task_id,) = send(db, "print(s.die_at_most_once.delay().id)")
    with worker(db, "-P", "process", "-c", "1", SAMPLE_LEDGER=str(ledger)):
        outcome = reader.results.wait([task_id], timeout=60)[task_id]
    assert outcome.state is TaskState.FAILURE and outcome.error is not None
    assert outcome.error.type == "WorkerLostError" and outcome.attempt == 1
    assert count(ledger, "START") == 1
    assert reader.broker.queue_stats() == []
