"""The worker's services (services.py): heartbeat and purge run on threads of their own, so a
slow purge never delays a lease renewal, and a service whose run raises is logged and runs again
without stopping the worker or another service. Real workers (threads pool, their keeper, writer
and services) in this process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.brokers.base import Lease, WorkerInfo
from conveyor.states import TaskState
from conveyor.worker.services import Service
from conveyor.worker.worker import Worker, default_options

from ..integration.helpers import wait_until


class Journal:
    """What happened, in order, across the worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[tuple[str, tuple[str, ...]]] = []

    def note(self, what: str, ids: Sequence[str] = ()) -> None:
        with self._lock:
            self.entries.append((what, tuple(ids)))

    def kinds(self) -> list[str]:
        with self._lock:
            return [what for what, _ in self.entries]

    def overlap(
        self, starts: tuple[str, str], ends: tuple[str, str]
    ) -> list[tuple[str, tuple[str, ...]]]:
        """The entries after both `starts` and before both `ends` (each noted once)."""
        kinds = self.kinds()
        first = max(kinds.index(kind) for kind in starts)
        last = min(kinds.index(kind) for kind in ends)
        assert first < last, f"{starts} and {ends} do not overlap: {kinds}"
        return self.entries[first + 1 : last]


def start(worker: Worker) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="worker-under-test")
    thread.start()
    return thread, failures


def test_a_purge_taking_10s_does_not_delay_a_2s_leases_renewals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the result store's purge sleeps 10 s, a task running ~5 s under a 2-second lease
    has its lease extended again and again (on the keeper's thread, the purge on its own), and
    finishes once, SUCCESS. With the purge on the keeper's thread, as before, the lease ran out
    during the purge and the outcome was refused as written under a lost lease."""
    app = Conveyor("svc", broker=f"sqlite:///{tmp_path / 's.db'}", set_as_current=False)
    journal = Journal()
    started, purged = threading.Event(), threading.Event()
    runs: list[str] = []

    @app.task(name="svc.long")
    def long() -> str:
        journal.note("task-start")
        started.set()
        time.sleep(5.0)
        runs.append("ran")
        journal.note("task-end")
        return "done"

    purge_expired, extend = app.results.purge_expired, app.broker.extend

    def slow_purge() -> int:
        journal.note("purge-start")
        started.wait(60)  # the task runs during the purge's sleep, however slow this machine
        time.sleep(10.0)
        journal.note("purge-end")
        purged.set()
        return purge_expired()

    def recorded_extend(leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        renewed = extend(leases, lease_for)
        journal.note("extend", [new.message_id for new in renewed if new is not None])
        lost = [old for old, new in zip(leases, renewed, strict=True) if new is None]
        journal.note("lost", [old.message_id for old in lost])
        return renewed

    app.results.purge_expired = slow_purge  # type: ignore[method-assign]
    app.broker.extend = recorded_extend  # type: ignore[method-assign]
    res = long.delay()
    worker = Worker(
        app, default_options(app, name="w@svc", pool="threads", concurrency=2, lease_for=2.0)
    )
    thread, failures = start(worker)
    try:
        assert res.get(timeout=60) == "done"
        assert purged.wait(60)
    finally:
        worker.stop()
        thread.join(60)
        app.close()
    assert not thread.is_alive() and failures == []
    during = journal.overlap(("purge-start", "task-start"), ("purge-end", "task-end"))
    renewals = [ids for what, ids in during if what == "extend"]
    assert sum(res.id in ids for ids in renewals) >= 2, journal.entries
    assert all(ids == () for what, ids in journal.entries if what == "lost")
    assert runs == ["ran"] and res.state is TaskState.SUCCESS  # once, never redelivered
    assert "lease lost" not in caplog.text


def test_a_raising_purge_is_logged_and_stops_neither_the_worker_nor_the_heartbeat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Conveyor("svc", broker="memory://", set_as_current=False)
    purges: list[int] = []
    beats: list[WorkerInfo] = []

    @app.task(name="svc.add")
    def add(x: int, y: int) -> int:
        return x + y

    def broken_purge() -> int:
        purges.append(len(beats))
        raise RuntimeError("the result table is locked")

    register = app.broker.register_worker

    def counted_register(info: WorkerInfo) -> None:
        beats.append(info)
        register(info)

    app.results.purge_expired = broken_purge  # type: ignore[method-assign]
    app.broker.register_worker = counted_register  # type: ignore[method-assign]
    worker = Worker(app, default_options(app, name="w@svc", pool="threads", concurrency=2))
    worker.purge.interval = worker.heartbeat.interval = 0.05
    thread, failures = start(worker)
    try:
        wait_until(lambda: len(purges) >= 3, 30, "three purge runs")
        wait_until(lambda: len(beats) >= purges[0] + 3, 30, "heartbeats after a failed purge")
        assert add.delay(2, 3).get(timeout=30) == 5  # consuming after the failures
        assert not worker.stopping
    finally:
        worker.stop()
        thread.join(60)
        app.close()
    assert not thread.is_alive() and failures == []
    logged = [r for r in caplog.records if r.getMessage().startswith("service purge failed")]
    assert len(logged) == worker.purge.failures == len(purges)
    assert "RuntimeError: the result table is locked" in logged[0].getMessage()
    assert beats[-1].stopped_at is not None  # the heartbeat's last word, after the writer


class Flaky(Service):
    """Raises on its first run, then counts its runs; `gate` holds a run when cleared."""

    run_at_start = True

    def __init__(self) -> None:
        super().__init__("flaky", 0.01)
        self.runs = 0
        self.gate = threading.Event()
        self.gate.set()

    def run_once(self) -> None:
        self.runs += 1
        self.gate.wait(30)
        if self.runs == 1:
            raise ValueError("first run fails")


def test_a_service_runs_again_after_a_raising_run_and_stop_says_when_a_run_outlasts_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "conveyor.worker")
    service = Flaky()
    service.start()
    try:
        wait_until(lambda: service.runs >= 3, 30, "runs after the failing one")
        assert service.failures == 1
        (record,) = [r for r in caplog.records if "service flaky failed" in r.getMessage()]
        assert record.levelno == logging.ERROR and "ValueError: first run fails" in record.message
        service.gate.clear()  # the next run waits: stop does not interrupt it
        seen = service.runs
        wait_until(lambda: service.runs > seen, 30, "a run under way")
        assert service.stop(timeout=0.05) is False
    finally:
        service.gate.set()
        service.stop()
    assert service.stop() is True
