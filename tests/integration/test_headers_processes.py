"""Headers and tracing across real processes: a producer process sends calls with headers (and
a before_task_publish receiver adds one), a `conveyor worker` (thread and process pools) runs
them, and the task sees them in `self.request.headers`, after a retry too; with tracing, the
consumer span in the pool child continues the producer's trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor

from .helpers import Where, dir_of, python, wait_until, worker

pytestmark = pytest.mark.slow

SEND = (
    "from traced_app import flaky, show\n"
    "print(show.apply_async(headers={'tenant': 'acme', 'n': [1, 2]}).id,"
    " flaky.apply_async(headers={'tenant': 'again'}).id)"
)


@pytest.mark.parametrize("pool", ["process", "threads"])
def test_headers_reach_the_task_in_a_worker_and_survive_a_retry(
    db: Where, reader: Conveyor, pool: str
) -> None:
    show_id, flaky_id = python(db, SEND).stdout.split()
    with worker(db, "-P", pool, "-c", "1", app="traced_app") as proc:
        shown = reader.AsyncResult(show_id).get(timeout=60)
        retried = reader.AsyncResult(flaky_id).get(timeout=60)
    assert shown["headers"] == {"tenant": "acme", "n": [1, 2], "added": "by-receiver"}
    assert retried["headers"] == {"tenant": "again", "added": "by-receiver"}
    assert retried["retries"] == 1  # the second run: the retry kept the call's headers
    if pool == "process":
        assert shown["pid"] != proc.pid  # ran in a pool child
    else:
        assert shown["pid"] == proc.pid


TRACED_SEND = (
    "import os\n"
    "from traced_app import boom, export_spans_to_file, show\n"
    "export_spans_to_file()\n"
    "print(os.getpid(), show.delay().id, boom.delay().id)"
)


def test_the_trace_of_a_send_continues_in_the_pool_child(db: Where, reader: Conveyor) -> None:
    log = dir_of(db) / "spans.jsonl"
    env = {"TRACE_LOG": str(log)}
    producer_pid, show_id, boom_id = python(db, TRACED_SEND, **env).stdout.split()
    with worker(db, "-P", "process", "-c", "1", app="traced_app", **env) as proc:
        shown = reader.AsyncResult(show_id).get(timeout=60)
        reader.results.wait([boom_id], timeout=60)
        wait_until(lambda: len(_spans(log, "CONSUMER")) == 2, 30, "the child's two spans")
    sends = {s["attributes"]["messaging.message.id"]: s for s in _spans(log, "PRODUCER")}
    runs = {s["attributes"]["messaging.message.id"]: s for s in _spans(log, "CONSUMER")}
    assert {s["pid"] for s in sends.values()} == {int(producer_pid)}
    for task_id in (show_id, boom_id):
        send, run = sends[task_id], runs[task_id]
        assert run["pid"] not in (proc.pid, int(producer_pid))  # the pool child
        assert run["trace_id"] == send["trace_id"] and run["parent_id"] == send["span_id"]
        assert run["attributes"]["messaging.destination.name"] == "celery"
    assert shown["headers"]["traceparent"].split("-")[1:3] == [
        sends[show_id]["trace_id"],
        sends[show_id]["span_id"],
    ]
    assert (runs[show_id]["name"], runs[show_id]["status"]) == ("process traced.show", "UNSET")
    assert (runs[boom_id]["name"], runs[boom_id]["status"]) == ("process traced.boom", "ERROR")


def _spans(path: Path, kind: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    return [s for s in spans if s["kind"] == kind]
