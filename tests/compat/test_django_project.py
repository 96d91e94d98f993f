"""Celery's "First steps with Django" project (tests/compat/projects/djangoproj: Celery's
examples/django, renames only, plus a `probe` app reporting on the worker's process), run for
real: `conveyor -A proj worker` started in the project directory, Django scripts as producers.

What Celery does, asserted here: the worker sets Django up and finds the tasks of every app in
INSTALLED_APPS (`app.autodiscover_tasks()` with no argument, an AppConfig path included); each
task starts without an open database connection (closed before and after every task, in pool
children and in the worker's own threads); `delay_on_commit` sends once the transaction commits
and never when it rolls back; `beat --scheduler django_celery_beat...` still starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import services
from .harness import env_for, produce, project, wait_until, worker

pytest.importorskip("django")

WHERE = project("djangoproj")

SETUP = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django.setup()
"""


@pytest.fixture
def django_db(tmp_path: Path, compat_url: str) -> str:
    """The project's Django database (COMPAT_DJANGO_DB), a file of the test's own, migrated."""
    path = str(tmp_path / "django.sqlite3")
    code = SETUP + "from django.core.management import call_command\n"
    code += "call_command('migrate', verbosity=0)"
    produce(WHERE, compat_url, code, COMPAT_DJANGO_DB=path)
    return path


def test_the_worker_runs_the_tasks_of_every_installed_app(compat_url: str, django_db: str) -> None:
    code = (
        SETUP
        + """
from demoapp.models import Widget
from demoapp.tasks import add, count_widgets, mul, xsum
Widget.objects.create(name="a")
Widget.objects.create(name="b")
print(add.delay(2, 3).get(timeout=30), mul.delay(4, 5).get(timeout=30),
      xsum.delay([1, 2, 3]).get(timeout=30), count_widgets.delay().get(timeout=30))
"""
    )
    # What a Django user types to try it: the project's own shell.
    shell = "from demoapp.tasks import add; print(add.delay(7, 8).get(timeout=30))"
    args = ("-A", "proj", "worker", "-l", "INFO", "-c", "1")
    with worker(WHERE, compat_url, *args, COMPAT_DJANGO_DB=django_db):
        out = produce(WHERE, compat_url, code, COMPAT_DJANGO_DB=django_db)
        managed = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", shell],
            cwd=WHERE,
            env=env_for(compat_url, COMPAT_DJANGO_DB=django_db),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert out.split() == ["5", "20", "6", "2"]
    assert managed.stdout.strip().splitlines()[-1:] == ["15"], managed.stderr  # after 5.2's notice


def test_django_system_checks_run_once_in_the_worker_not_in_each_child(
    compat_url: str, django_db: str
) -> None:
    code = SETUP + "from demoapp.tasks import add\nprint(add.delay(1, 2).get(timeout=30))"
    args = ("-A", "proj", "worker", "-l", "INFO", "-c", "2")
    with worker(WHERE, compat_url, *args, COMPAT_DJANGO_DB=django_db) as proc:
        assert produce(WHERE, compat_url, code, COMPAT_DJANGO_DB=django_db).strip() == "3"
        log = proc.log()
    assert log.count("(probe.W001) probe checks ran") == 1, log


def test_results_in_the_django_database_with_django_db(compat_url: str, django_db: str) -> None:
    code = (
        SETUP
        + """
import sqlite3
from django.conf import settings
from demoapp.tasks import add
print(add.delay(20, 22).get(timeout=30))
tables = sqlite3.connect(settings.DATABASES["default"]["NAME"]).execute(
    "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
print("conveyor_results" in {name for (name,) in tables})
"""
    )
    args = ("-A", "proj", "worker", "-l", "INFO", "-c", "1")
    backend = "django-db"
    with worker(
        WHERE, compat_url, *args, COMPAT_DJANGO_DB=django_db, COMPAT_RESULT_BACKEND=backend
    ):
        out = produce(
            WHERE, compat_url, code, COMPAT_DJANGO_DB=django_db, COMPAT_RESULT_BACKEND=backend
        )
    # The result came back through conveyor's result table in the Django project's database.
    assert out.split() == ["42", "True"]


@pytest.mark.parametrize("pool", ["process", "threads"])
def test_each_task_starts_without_an_open_database_connection(
    compat_url: str, django_db: str, pool: str
) -> None:
    code = (
        SETUP
        + """
import json
from probe.tasks import connection_state
print(json.dumps([connection_state.delay().get(timeout=30) for _ in range(3)]))
"""
    )
    args = ("-A", "proj", "worker", "-l", "INFO", "-P", pool, "-c", "1")
    with worker(WHERE, compat_url, *args, COMPAT_DJANGO_DB=django_db) as proc:
        states = json.loads(produce(WHERE, compat_url, code, COMPAT_DJANGO_DB=django_db))
    # Every task found Django set up and no connection left open by the task before it, in
    # the same process (one slot): the worker closed it after the task and before the next.
    assert all(s["django_ready"] and s["fresh"] for s in states), (states, proc.log())
    assert len({s["pid"] for s in states}) == 1


def test_delay_on_commit_sends_after_the_commit_and_never_after_a_rollback(
    compat_url: str, django_db: str
) -> None:
    code = (
        SETUP
        + """
import time
from django.db import transaction
from django.test import Client
from demoapp.models import Widget
from demoapp.tasks import add, rename_widget

# The view creates a widget and renames it with delay_on_commit inside its transaction: had
# the call been sent before the commit, the worker would not have found the row.
client = Client(HTTP_HOST="localhost")
widget_id = client.post("/widgets/", {"name": "new", "rename_to": "renamed"}).json()["id"]

try:
    with transaction.atomic():
        doomed = Widget.objects.create(name="doomed")
        rename_widget.apply_async_on_commit((doomed.id, "never"), task_id="rolled-back-call")
        raise RuntimeError("roll back")
except RuntimeError:
    pass

assert add.delay(1, 1).get(timeout=30) == 2  # the worker ran what was sent after that
deadline = time.monotonic() + 30
while Widget.objects.get(id=widget_id).name != "renamed" and time.monotonic() < deadline:
    time.sleep(0.05)
print(Widget.objects.get(id=widget_id).name, rename_widget.AsyncResult("rolled-back-call").state)
"""
    )
    with worker(
        WHERE,
        compat_url,
        "-A",
        "proj",
        "worker",
        "-l",
        "INFO",
        "-c",
        "1",
        COMPAT_DJANGO_DB=django_db,
    ):
        out = produce(WHERE, compat_url, code, COMPAT_DJANGO_DB=django_db)
    assert out.split() == ["renamed", "PENDING"]


def test_beat_accepts_the_django_celery_beat_scheduler(compat_url: str, django_db: str) -> None:
    args = ("-A", "proj", "beat", "-l", "INFO")
    scheduler = "django_celery_beat.schedulers:DatabaseScheduler"
    with worker(
        WHERE, compat_url, *args, "--scheduler", scheduler, COMPAT_DJANGO_DB=django_db
    ) as proc:
        proc.wait_for_log("conveyor beat")
        wait_until(lambda: "django_celery_beat" in proc.log(), 30, "the -S notice", proc)
        assert proc.proc.poll() is None, proc.log()


@pytest.fixture
def django_pg(compat_url: str) -> Iterator[dict[str, str]]:
    """The project's Django database on PostgreSQL instead: a schema of the test's own,
    migrated (dropped afterwards); the environment its processes need."""
    services.require_postgres()
    import psycopg

    schema = f"compat_dj_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    env = {"COMPAT_DJANGO_PG_URL": services.POSTGRES_URL, "COMPAT_DJANGO_PG_SCHEMA": schema}
    try:
        code = SETUP + "from django.core.management import call_command\n"
        code += "call_command('migrate', verbosity=0)"
        produce(WHERE, compat_url, code, 120, **env)
        yield env
    finally:
        services.drop_schema(schema)


def _server_connections(application_name: str) -> int:
    import psycopg

    with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_worker_children_hold_no_postgresql_connection_between_tasks(
    compat_url: str, django_pg: dict[str, str]
) -> None:
    code = (
        SETUP
        + """
import json
from probe.tasks import connection_state
print(json.dumps([connection_state.delay().get(timeout=30) for _ in range(6)]))
"""
    )
    schema = django_pg["COMPAT_DJANGO_PG_SCHEMA"]
    args = ("-A", "proj", "worker", "-l", "INFO", "-c", "2")
    with worker(WHERE, compat_url, *args, **django_pg) as proc:
        states = json.loads(produce(WHERE, compat_url, code, 120, **django_pg))
        # Every task opened a connection to the server; each was closed after its task, so
        # two idle children hold none (Django alone would keep one open in each).
        wait_until(lambda: _server_connections(schema) == 0, 10, "no open connection", proc)
    assert all(s["fresh"] for s in states), (states, proc.log())
