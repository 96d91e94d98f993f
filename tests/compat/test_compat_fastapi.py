"""The common FastAPI + Celery layout (worker.py with the app as `celery`, main.py with the
views), renamed: `conveyor -A worker.celery worker`, views called through FastAPI's TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .harness import Running, project, worker


@pytest.fixture(scope="module")
def fastapi_proj(module_url: str) -> Iterator[Running]:
    where = project("fastapi_app")
    with worker(where, module_url, "-A", "worker.celery", "worker", "--loglevel=info") as w:
        yield Running(where, module_url, w)


def test_post_then_poll_the_status_until_success(fastapi_proj: Running) -> None:
    """While the task runs its status is PENDING (Celery records STARTED only with
    task_track_started); then SUCCESS with the task's return value."""
    out = fastapi_proj.run(
        """
        import json, time
        from fastapi.testclient import TestClient
        from main import app
        client = TestClient(app)
        r = client.post("/tasks", json={"type": 2})
        task_id = r.json()["task_id"]
        seen = [client.get(f"/tasks/{task_id}").json()]
        deadline = time.monotonic() + 15
        while seen[-1]["task_status"] != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.1)
            seen.append(client.get(f"/tasks/{task_id}").json())
        print(json.dumps(seen))
        """
    )
    seen = json.loads(out)
    assert seen[0]["task_status"] == "PENDING" and seen[0]["task_result"] is None
    assert seen[-1]["task_status"] == "SUCCESS" and seen[-1]["task_result"] is True
    assert {s["task_status"] for s in seen} <= {"PENDING", "SUCCESS"}, seen
