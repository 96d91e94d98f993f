"""Celery's app patterns, written as Celery's docs and common projects write them (renames
only), run for real: a module that starts its own worker (`app.start()`), periodic tasks added
from `on_after_configure`, and a FastAPI-style `main.py` whose app is `celery` (`-A
main.celery`) with constructor settings, class-based tasks and the current app/task proxies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import command, env_for, produce, project, wait_until, worker

pytestmark = pytest.mark.slow


def test_myapp_starts_its_own_worker_with_app_start(compat_url: str, tmp_path: Path) -> None:
    where = project("app_myapp")
    log = tmp_path / "myapp.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "myapp.py", "worker", "-l", "INFO", "-Q", "celery,default"],
            cwd=where,
            env=env_for(compat_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        got = produce(where, compat_url, "from myapp import add\nprint(add.delay(16, 16).get(60))")
        assert got.strip() == "32", log.read_text()
        assert produce(where, compat_url, "import myapp\nprint(myapp.app.conf.task_acks_late)") == (
            "True\n"
        )
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()


def test_periodic_tasks_from_on_after_configure(compat_url: str) -> None:
    where = project("app_periodic")
    listed = command(where, compat_url, "-A", "periodic", "schedule", "list")
    assert listed.returncode == 0, listed.stderr
    for key in ("add every 10", "add every 30", "periodic.test('world')"):
        assert key in listed.stdout, listed.stdout
    assert "periodic.test('Happy Mondays!')" in listed.stdout
    with worker(
        where, compat_url, "-A", "periodic", "worker", "-B", "-l", "INFO", "-Q", "celery,default"
    ) as proc:
        wait_until(lambda: "hello" in proc.log(), 40, "test('hello') to run", proc)


def test_fastapi_style_main_celery(compat_url: str) -> None:
    where = project("app_fastapi_style")
    with worker(
        where, compat_url, "-A", "main.celery", "worker", "-l", "INFO", "-Q", "celery,default"
    ) as proc:
        code = (
            "import json\n"
            "from main import create_task, process_rows, aware, via_current_app, celery\n"
            "from conveyor import current_app\n"
            "r = create_task.delay(90)\n"
            "out = {'create': r.get(60), 'id': r.id, 'rows': process_rows.delay().get(60),\n"
            "       'aware': aware.delay('2024-01-01T12:00:00').get(60),\n"
            "       'double': current_app.send_task('custom.double', args=[21]).get(60),\n"
            "       'same': current_app._get_current_object() is celery}\n"
            "inner = via_current_app.delay(5).get(60)\n"
            "out['inner'] = current_app.AsyncResult(inner).get(60)\n"
            "print(json.dumps(out))"
        )
        out = json.loads(produce(where, compat_url, code))
        assert out["create"] == {"type": 90, "id": out["id"], "took": "1.50 minutes"}, proc.log()
        assert out["rows"] == 6 and out["double"] == 42 and out["inner"] == 10
        assert out["aware"] == "2024-01-01T12:00:00+00:00" and out["same"] is True
        assert "running " + out["id"] in proc.log()


def test_application_guide_config_envvar_abstract_task_and_app_task(compat_url: str) -> None:
    where = project("app_guide")
    env = {"CELERY_CONFIG_MODULE": "celeryconfig"}
    code = (
        "from tasks import app, add, mul\n"
        "print(app.main, app.conf.timezone)\n"
        "print(add.delay(2, 2).id)\nprint(mul.delay(3, 4).id)"
    )
    header, add_id, mul_id = (
        produce(where, compat_url, code, CELERY_CONFIG_MODULE="celeryconfig").strip().split("\n")
    )
    assert header == "tasks Europe/London"
    fetch = "from tasks import app\nprint(app.AsyncResult({!r}).get(60))"
    with worker(where, compat_url, "-A", "tasks", "worker", "-Q", "hipri", **env):
        assert (
            produce(
                where, compat_url, fetch.format(mul_id), CELERY_CONFIG_MODULE="celeryconfig"
            ).strip()
            == "12"
        )
    with worker(where, compat_url, "-A", "tasks", "worker", "-Q", "celery,default", **env) as proc:
        assert (
            produce(
                where, compat_url, fetch.format(add_id), CELERY_CONFIG_MODULE="celeryconfig"
            ).strip()
            == "4"
        )
        wait_until(lambda: f"TASK STARTING: tasks.add[{add_id}]" in proc.log(), 30, "print", proc)
