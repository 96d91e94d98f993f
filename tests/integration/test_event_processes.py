"""Events of calls run by process-pool children come from the worker process (the parent sees
every outcome): a real `-P process` worker (Worker.run on a thread of this process, its children
real processes) and a subscriber on this process's `app.events`."""

from __future__ import annotations

import importlib
import os
import signal
import textwrap
import uuid
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.events import Event, TaskEvent
from conveyor.states import TaskState
from conveyor.worker.worker import Worker, default_options

from ..unit.test_worker_services import start
from .helpers import wait_until

pytestmark = pytest.mark.slow

APP = """
import os
import time

from conveyor import Conveyor

app = Conveyor("evp", broker={url!r}, set_as_current=False)


@app.task(name="evp.pid")
def pid() -> int:
    return os.getpid()


@app.task(name="evp.fail")
def fail() -> None:
    raise ValueError("from a child")


@app.task(name="evp.hang")
def hang() -> None:
    time.sleep(120)
"""


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Conveyor, str]:
    """A fresh app module its children import by name (`app_path`)."""
    name = f"evp_app_{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'evp.db'}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(APP.format(url=url)))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    app: Conveyor = module.app
    return app, name


def test_a_process_pool_childs_calls_have_their_events_from_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, app_path = load(tmp_path, monkeypatch)
    events: list[Event] = []
    sub = app.events.subscribe(events.append)
    options = default_options(
        app, name="w@evp", pool="process", concurrency=2, app_path=app_path, lease_for=3.0
    )
    worker = Worker(app, options)
    thread, failures = start(worker)
    try:
        ok = [app.send_task("evp.pid") for _ in range(3)]
        bad, hung = app.send_task("evp.fail"), app.send_task("evp.hang")

        def of(task_id: str) -> list[TaskEvent]:
            return [e for e in list(events) if isinstance(e, TaskEvent) and e.uuid == task_id]

        wait_until(lambda: all(r.state is TaskState.SUCCESS for r in ok), 60, "the successes")
        wait_until(lambda: bad.state is TaskState.FAILURE, 60, "the failure")
        wait_until(lambda: [e.type.value for e in of(hung.id)][-1:] == ["task-started"], 60, "hang")
        app.control.revoke(hung.id, terminate=True)
        wait_until(lambda: hung.state is TaskState.REVOKED, 60, "the terminated call")
    finally:
        worker.stop()
        thread.join(60)
    assert failures == [] and not thread.is_alive()
    assert sub.close(5.0)

    for res in ok:
        sent, received, started, succeeded = of(res.id)
        child = res.get(timeout=1)
        assert [sent.type.value, received.type.value] == ["task-sent", "task-received"]
        assert started.type.value == "task-started" and started.pid == child != os.getpid()  # type: ignore[attr-defined]
        assert succeeded.type.value == "task-succeeded" and succeeded.hostname == "w@evp"
        assert succeeded.runtime >= 0  # type: ignore[attr-defined]
    failed = of(bad.id)[-1]
    assert failed.type.value == "task-failed"
    assert failed.exception == "ValueError('from a child')"  # type: ignore[attr-defined]
    assert "ValueError: from a child" in failed.traceback  # type: ignore[attr-defined]
    revoked = of(hung.id)[-1]
    assert revoked.type.value == "task-revoked"
    assert (revoked.terminated, revoked.expired, revoked.signum) == (True, False, signal.SIGKILL)  # type: ignore[attr-defined]
    types = [e.type.value for e in events]
    assert types.index("worker-online") < types.index("task-received")  # online, then consuming
    assert types[-1] == "worker-offline"
