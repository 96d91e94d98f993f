"""The Celery app patterns that cross processes, run for real: Flask's `celery_init_app`
(task_cls whose __call__ opens the app context, in process-pool children, `-A module.attr`),
and a module that starts its own worker with `app.start()` and adds a periodic task from
`on_after_configure`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import Conveyor

from .helpers import HERE, Where, dir_of, env_for, python, stop_worker, wait_until, worker

pytestmark = pytest.mark.slow


@pytest.mark.every_backend
def test_flask_task_cls_runs_in_the_app_context_in_pool_children(
    db: Where, reader: Conveyor
) -> None:
    pytest.importorskip("flask")
    produced = python(
        db,
        "from flask_style_app import add, greeting\n"
        "print(add.delay(2, 3).id)\nprint(greeting.delay().id)",
    )
    add_id, greeting_id = produced.stdout.split()
    with worker(db, "-P", "process", "-c", "1", app="flask_style_app.celery_app"):
        assert reader.AsyncResult(add_id).get(timeout=60) == 5
        assert reader.AsyncResult(greeting_id).get(timeout=60) == {
            "greeting": "hello from the app context",
            "task": "flask_style_app.greeting",
        }


def test_app_start_runs_a_worker_with_periodic_tasks(db: Where, reader: Conveyor) -> None:
    ticks = dir_of(db) / "ticks.txt"
    log = (dir_of(db) / "started.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "started_app.py", "worker", "-l", "INFO", "-B", "-c", "1"],
        cwd=HERE,
        env=env_for(db, STARTED_APP_TICKS=str(ticks)),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        produced = python(db, "from started_app import add; print(add.delay(20, 22).id)")
        assert reader.AsyncResult(produced.stdout.strip()).get(timeout=60) == 42
        wait_until(lambda: _lines(ticks) >= 2, 60, "two periodic ticks")
    finally:
        stop_worker(proc)
        log.close()
    assert proc.returncode == 0, (dir_of(db) / "started.log").read_text()


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0
