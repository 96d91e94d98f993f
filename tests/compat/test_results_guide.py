"""Celery's result snippets (tasks and calling guides), renames only, run for real: progress
states read while the task runs, get(on_message=), AsyncResult(id) with no app, the app's own
exception classes caught around get(), ignore_result, the guard against get() inside a task,
and task.apply()."""

from __future__ import annotations

import json

from .harness import produce, project, worker

WORKER = ("-A", "tasks", "worker", "-Q", "celery,default", "-l", "INFO", "-c", "2")

ON_MESSAGE = """
import json
from tasks import hello

seen = []

def on_raw_message(body):
    seen.append({"status": body["status"], "result": body["result"]})

a, b = 1, 1
r = hello.apply_async(args=(a, b))
value = r.get(on_message=on_raw_message, propagate=False, timeout=60)
print(json.dumps({"value": value, "seen": seen}))
"""

PROGRESS_VIEW = """
import json, time
from conveyor.result import AsyncResult
import tasks

task_id = tasks.upload_files.delay(["a", "b", "c", "d"]).id
res = AsyncResult(task_id)  # a web view has only the id, and no app at hand
deadline = time.monotonic() + 30
while res.state != "PROGRESS" and time.monotonic() < deadline:
    time.sleep(0.05)
state, info = res.state, res.info
print(json.dumps({"state": state, "info": info, "final": res.get(timeout=60)}))
"""

ERRORS = """
import json
from tasks import HttpError, fetch, log_click, waits_for_another

try:
    fetch.delay("http://example.com/").get(timeout=30)
except HttpError as exc:
    caught = ["HttpError", list(exc.args)]
inner = waits_for_another.delay(2).get(timeout=30, propagate=False)
guarded = "never call result.get()" in str(inner).lower()
print(json.dumps({"caught": caught, "ignored": log_click.delay(1).get(timeout=1),
                  "inner": [type(inner).__name__, guarded]}))
"""

APPLY = """
import json
from conveyor.result import EagerResult
from tasks import add, fetch

res = add.apply((2, 2))
failed = fetch.apply(("u",))
print(json.dumps({"eager": isinstance(res, EagerResult), "value": res.get(), "state": res.state,
                  "failed": [failed.state, type(failed.result).__name__]}))
"""

SETS = """
import json
from conveyor.result import GroupResult, ResultSet
from tasks import add

rs = ResultSet([add.delay(1, 1), add.delay(2, 2)])
rs.add(add.delay(3, 3))
values = rs.join(timeout=30)
saved = GroupResult("g-" + rs[0].id, rs.results).save()
back = GroupResult.restore(saved.id)
print(json.dumps({"values": values, "done": rs.completed_count(), "ready": rs.ready(),
                  "restored": back.get(timeout=30)}))
"""


def test_result_sets_join_in_order_and_group_results_restore(compat_url: str) -> None:
    where = project("results_guide")
    with worker(where, compat_url, *WORKER) as proc:
        out = json.loads(produce(where, compat_url, SETS))
    assert out == {"values": [2, 4, 6], "done": 3, "ready": True, "restored": [2, 4, 6]}, proc.log()


def test_progress_is_reported_to_on_message_then_the_value(compat_url: str) -> None:
    where = project("results_guide")
    with worker(where, compat_url, *WORKER) as proc:
        out = json.loads(produce(where, compat_url, ON_MESSAGE))
    assert out["value"] == "hello world: 2", proc.log()
    progress = [m["result"] for m in out["seen"] if m["status"] == "PROGRESS"]
    assert progress == [{"progress": 50}, {"progress": 90}]
    assert out["seen"][-1] == {"status": "SUCCESS", "result": "hello world: 2"}


def test_a_view_reads_progress_by_id_while_the_task_runs(compat_url: str) -> None:
    where = project("results_guide")
    with worker(where, compat_url, *WORKER) as proc:
        out = json.loads(produce(where, compat_url, PROGRESS_VIEW))
    assert out["state"] == "PROGRESS", proc.log()
    assert out["info"]["total"] == 4 and 0 <= out["info"]["current"] < 4
    assert out["final"] == 4


def test_errors_ignored_results_and_the_get_in_a_task_guard(compat_url: str) -> None:
    where = project("results_guide")
    with worker(where, compat_url, *WORKER) as proc:
        out = json.loads(produce(where, compat_url, ERRORS))
    assert out["caught"] == ["HttpError", ["http://example.com/"]], proc.log()
    assert out["ignored"] is None
    assert out["inner"] == ["RuntimeError", True]


def test_apply_runs_here_and_returns_an_eager_result(compat_url: str) -> None:
    out = json.loads(produce(project("results_guide"), compat_url, APPLY))
    assert out == {
        "eager": True,
        "value": 4,
        "state": "SUCCESS",
        "failed": ["FAILURE", "HttpError"],
    }
