"""The app of the canvas process tests (imported as `canvas_app`): tasks called as Celery's
canvas guide calls them, and callbacks / errbacks that write what they were given, one JSON
line each, to CANVAS_LEDGER (outside the broker), so a test can count their runs."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from conveyor import Conveyor, Request, Task, signature

app = Conveyor("canvas")
app.conf.update(visibility_timeout=float(os.environ.get("CANVAS_VISIBILITY", "30")))


def _write(kind: str, **fields: Any) -> None:
    path = os.environ.get("CANVAS_LEDGER")
    if not path:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)


@app.task(name="canvas.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="canvas.mul")
def mul(x: int, y: int) -> int:
    return x * y


@app.task(name="canvas.tsum")
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task(name="canvas.fail")
def fail(x: int) -> None:
    raise ValueError(f"cannot handle {x}")


@app.task(name="canvas.slow", bind=True)
def slow(self: Task, seconds: float) -> int:
    _write("START", id=self.request.id, attempt=self.request.attempt)
    time.sleep(seconds)  # the workload itself
    return self.request.attempt


@app.task(name="canvas.callback", bind=True)
def callback(self: Task, *args: Any) -> None:
    _write("CALLBACK", id=self.request.id, attempt=self.request.attempt, args=list(args))


@app.task(name="canvas.on_error", bind=True)
def on_error(self: Task, task_id: str) -> None:
    _write("ON_ERROR", id=self.request.id, failed=task_id)


@app.task(name="canvas.error_handler")
def error_handler(request: Request, exc: Exception, traceback: str | None) -> None:
    _write(
        "ERROR_HANDLER",
        failed=request.id,
        task=request.task,
        args=list(request.args),
        exc=f"{type(exc).__name__}: {exc}",
        traceback=traceback or "",
    )


@app.task(name="canvas.process")
def process(data: int, callback: dict[str, Any]) -> str:
    """Celery's pattern of a callback passed as an argument: it arrives as a dict."""
    return signature(callback).delay(data * 2).id


def ledger(path: str) -> list[dict[str, Any]]:
    """The lines written so far."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]
