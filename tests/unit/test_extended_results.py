"""result_extended: outcomes keep the call's args and kwargs only when the setting is on (in a
worker and in eager mode), and SQLite files written before the setting existed gain the column."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from conveyor import Conveyor
from conveyor.clock import FakeClock
from conveyor.results.base import HistoryQuery, Outcome
from conveyor.results.sqlite import SqliteResultStore
from conveyor.states import TaskState
from conveyor.testing import solo_worker


def make_app(tmp_path: Path, **settings: Any) -> Conveyor:
    app = Conveyor("x", broker=f"sqlite:///{tmp_path / 'x.db'}", set_as_current=False)
    app.conf.update(**settings)

    @app.task(name="greet")
    def greet(name: str, punctuation: str = ".") -> str:
        return f"hello {name}{punctuation}"

    return app


def test_a_worker_stores_arguments_only_with_result_extended(tmp_path: Path) -> None:
    app = make_app(tmp_path, result_extended=True)
    on = app.tasks["greet"].delay("ada", punctuation="!")
    solo_worker(app).run_until_idle()
    assert on.get(timeout=5) == "hello ada!"
    assert on.args == ["ada"] and on.kwargs == {"punctuation": "!"} and on.name == "greet"
    assert on.queue == "celery" and on.worker == "test@local" and on.retries == 0
    assert on.date_done is not None

    app.conf.result_extended = False
    off = app.tasks["greet"].delay("bob")
    solo_worker(app).run_until_idle()
    assert off.get(timeout=5) == "hello bob."
    assert off.outcome is not None and off.outcome.arguments is None
    assert off.args is None and off.kwargs is None and off.name == "greet"


def test_eager_mode_follows_result_extended(tmp_path: Path) -> None:
    app = make_app(tmp_path, task_always_eager=True)
    app.conf.result_extended = True
    on = app.tasks["greet"].delay("eve")
    assert on.args == ["eve"] and on.kwargs == {}
    app.conf.result_extended = False
    off = app.tasks["greet"].delay("eve")
    assert off.outcome is not None and off.args is None


OLD_SCHEMA = """
CREATE TABLE conveyor_results (
    task_id TEXT PRIMARY KEY, state TEXT NOT NULL, value BLOB, error_type TEXT,
    error_module TEXT, error_message TEXT, traceback TEXT, task_name TEXT, queue TEXT,
    worker TEXT, attempt INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
    started_at REAL, finished_at REAL, reason TEXT, updated_at REAL NOT NULL, expires_at REAL
);
INSERT INTO conveyor_results (task_id, state, value, task_name, updated_at)
VALUES ('old', 'SUCCESS', '1', 'greet', 100.0);
"""


def test_an_sqlite_file_from_an_earlier_release_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    store = SqliteResultStore(path, ttl=None)
    old = store.get("old")
    assert old is not None and old.token == 0 and old.arguments is None
    store.put([Outcome("new", TaskState.SUCCESS, task_name="greet", arguments=b'{"args":[1]}')])
    new = store.get("new")
    assert new is not None and new.arguments == b'{"args":[1]}'
    listed = store.history(HistoryQuery(task_name="greet"))
    assert [e.outcome.task_id for e in listed.entries] == ["new", "old"]
    store.close()
    with sqlite3.connect(path) as conn:
        indexes = {r[1] for r in conn.execute("PRAGMA index_list('conveyor_results')")}
    assert "conveyor_results_task" in indexes


def test_workers_purge_expired_results_in_the_background(tmp_path: Path) -> None:
    clock = FakeClock()
    app = Conveyor("x", broker=f"sqlite:///{tmp_path / 'p.db'}", clock=clock, set_as_current=False)
    app.conf.result_expires = 3600

    @app.task(name="noop")
    def noop() -> int:
        return 1

    old = noop.delay()
    worker = solo_worker(app)
    worker.run_until_idle()
    clock.advance(1800.0)
    new = noop.delay()
    worker.run_until_idle()
    worker.purge.run_once()  # the purge service's first round purges nothing yet
    assert old.state is TaskState.SUCCESS and _rows(tmp_path / "p.db") == 2
    clock.advance(1801.0)  # old is past result_expires, new is not
    assert app.AsyncResult(old.id).state is TaskState.PENDING  # invisible at once…
    assert _rows(tmp_path / "p.db") == 2
    worker.purge.run_once()  # …and deleted by its next round (every 5 minutes), no cron
    assert _rows(tmp_path / "p.db") == 1 and new.get(timeout=1) == 1
    app.close()


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM conveyor_results").fetchone()[0])
