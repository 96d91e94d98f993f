"""Flask's Celery example (pallets/flask examples/celery) renamed: `conveyor -A make_celery
worker`, and the app's views called through Flask's test client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .harness import Running, project, worker

CLIENT = """
import json, time
from task_app import create_app
app = create_app()
client = app.test_client()

def wait(result_id, timeout=15):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/tasks/result/{result_id}").get_json()
        seen.append(body)
        if body["ready"]:
            return seen
        time.sleep(0.1)
    raise SystemExit(f"not ready after {timeout} s: {seen[-1]}")
"""


@pytest.fixture(scope="module")
def flask_proj(module_url: str) -> Iterator[Running]:
    where = project("flask_app")
    with worker(where, module_url, "-A", "make_celery", "worker", "--loglevel", "INFO") as w:
        yield Running(where, module_url, w)


def test_add_view_sends_and_result_view_reads_the_value(flask_proj: Running) -> None:
    out = flask_proj.run(
        CLIENT
        + """
r = client.post("/tasks/add", data={"a": 2, "b": 3})
print(json.dumps(wait(r.get_json()["result_id"])[-1]))
"""
    )
    assert json.loads(out) == {"ready": True, "successful": True, "value": 5}


def test_tasks_run_inside_the_flask_app_context(flask_proj: Running) -> None:
    """FlaskTask.__call__ wraps run() in app.app_context(): the worker must call it."""
    out = flask_proj.run(
        CLIENT
        + """
r = client.post("/tasks/app_name")
print(json.dumps(wait(r.get_json()["result_id"])[-1]))
"""
    )
    assert json.loads(out) == {"ready": True, "successful": True, "value": "task_app"}


def test_process_view_reports_progress_then_the_final_value(flask_proj: Running) -> None:
    out = flask_proj.run(
        CLIENT
        + """
r = client.post("/tasks/process", data={"total": 3})
print(json.dumps(wait(r.get_json()["result_id"])))
"""
    )
    seen = json.loads(out)
    assert seen[-1] == {"ready": True, "successful": True, "value": {"current": 3, "total": 3}}
    progress = [b["value"] for b in seen if not b["ready"] and b["value"]]
    assert progress and all(v.get("total") == 3 for v in progress), seen


def test_config_from_object_reads_the_flask_config_dict(flask_proj: Running) -> None:
    out = flask_proj.lines(
        """
        from task_app import create_app
        app = create_app()
        celery_app = app.extensions["celery"]
        print(celery_app.conf.task_ignore_result)
        print(celery_app.conf.broker_url == celery_app.conf.result_backend)
        """
    )
    assert out == ["True", "True"]
