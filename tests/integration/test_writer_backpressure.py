"""A worker whose result store stops taking writes stops reserving: what ran and is not written
yet holds no renewed lease, so running more would only make more calls run twice once their
leases ran out. A real worker (threads pool, its writer thread) in this process, on SQLite,
whose store's `put` waits until the test lets it through."""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from pathlib import Path

from conveyor import Conveyor
from conveyor.results.base import Outcome
from conveyor.states import TaskState
from conveyor.worker.worker import Worker, default_options
from conveyor.worker.writer import BACKLOG_LIMIT

from .helpers import wait_until

CALLS = 400


def test_a_worker_whose_store_takes_no_writes_stops_reserving_and_runs_each_call_once(
    tmp_path: Path,
) -> None:
    app = Conveyor("bp", broker=f"sqlite:///{tmp_path / 'q.db'}", set_as_current=False)
    runs: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    @app.task(name="bp.echo")
    def echo(i: int) -> int:
        with lock:
            runs[i] += 1
        return i

    store_open = threading.Event()
    put = app.results.put

    def stalled_put(outcomes: Sequence[Outcome]) -> list[bool]:
        store_open.wait(120)  # as a guard waiting out a store that is down would
        return put(outcomes)

    calls = [echo.delay(i) for i in range(CALLS)]
    worker = Worker(app, default_options(app, name="w@bp", pool="threads", concurrency=4))
    app.results.put = stalled_put  # type: ignore[method-assign]
    running = threading.Thread(target=worker.run, name="worker-under-test")
    running.start()
    try:
        writer = worker.settler.writer
        wait_until(lambda: writer.held_off > 0, 60, "the worker to stop reserving")
        with lock:
            ran = sum(runs.values())
        ready = sum(s.ready for s in app.broker.queue_stats())
        assert writer.backlog >= BACKLOG_LIMIT
        assert ran < CALLS and ready > 0, (ran, ready)
        store_open.set()
        assert [c.get(timeout=60) for c in calls] == list(range(CALLS))
        stored = app.results.get_many([c.id for c in calls])
        assert all(o.state is TaskState.SUCCESS for o in stored.values()) and len(stored) == CALLS
        assert set(runs.values()) == {1} and len(runs) == CALLS  # each ran once
    finally:
        store_open.set()
        worker.stop()
        running.join(60)
        app.close()
    assert not running.is_alive()
