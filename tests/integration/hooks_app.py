"""An app whose Task base class writes each hook call to a file (HOOKS_LOG), one JSON line with
the process id, so a test can see which hooks ran, with what, and in which process."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor import Conveyor, Task
from conveyor.signals import ExceptionInfo

app = Conveyor("hooks")
app.conf.task_annotations = {"hooks_app.limited": {"max_retries": 0}}


def _write(entry: dict[str, Any]) -> None:
    line = json.dumps({"pid": os.getpid(), **entry}, default=repr) + "\n"
    fd = os.open(os.environ["HOOKS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)


class Logged(Task):
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        _write({"hook": "before_start", "id": task_id, "args": list(args)})

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        _write({"hook": "on_success", "id": task_id, "retval": retval})

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        _write({"hook": "on_failure", "id": task_id, "exc": repr(exc), "tb": einfo.traceback})

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        _write({"hook": "on_retry", "id": task_id, "exc": repr(exc)})

    def after_return(self, status: str, retval: Any, task_id: str, *rest: Any) -> None:
        _write({"hook": "after_return", "id": task_id, "status": status})


@app.task(base=Logged)
def add(x: int, y: int) -> int:
    return x + y


@app.task(base=Logged)
def fail(n: int) -> None:
    raise ValueError(f"bad {n}")


@app.task(base=Logged, bind=True, default_retry_delay=0)
def flaky(self: Task) -> str:
    if self.request.retries == 0:
        raise self.retry(exc=OSError("first try"))
    return "second try"


@app.task(base=Logged, bind=True, default_retry_delay=0)
def limited(self: Task) -> None:
    raise self.retry(exc=OSError("annotated max_retries=0: no retry"))


@app.task(base=Logged, time_limit=0.5)
def stuck() -> None:
    import time

    time.sleep(60)
