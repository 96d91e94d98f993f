"""Celery worker options with real workers: `-I/--include` (imported by the process pool's
children too) and `--purge` (waiting messages deleted before consuming), on SQLite."""

from __future__ import annotations

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState

from .helpers import Where, log_of, start_worker, stop_worker, wait_until, worker

pytestmark = pytest.mark.slow


def test_included_modules_register_their_tasks_in_pool_children(
    db: Where, reader: Conveyor
) -> None:
    with worker(db, "-I", "cli_extra", "-c", "1", app="cli_app") as proc:
        published = lambda: any("cli.extra" in w.task_names for w in reader.broker.workers())  # noqa: E731
        wait_until(published, 60, "the worker to publish cli.extra")
        child_pid = reader.send_task("cli.extra").get(timeout=60)
        assert child_pid != proc.pid  # ran in a process-pool child, which imported it too


def test_purge_deletes_what_waits_before_the_worker_consumes(db: Where, reader: Conveyor) -> None:
    reader.task(name="cli.add")(lambda x, y: x + y)  # known here: sent before any worker runs
    stale = reader.send_task("cli.add", args=(1, 1))
    proc = start_worker(db, "--purge", "-P", "threads", app="cli_app")
    try:
        wait_until(lambda: "purge: deleted 1 waiting message" in log_of(proc), 60, "the purge")
        assert reader.send_task("cli.add", args=(2, 2)).get(timeout=60) == 4
        assert reader.AsyncResult(stale.id).state == TaskState.PENDING  # never ran
    finally:
        stop_worker(proc)
