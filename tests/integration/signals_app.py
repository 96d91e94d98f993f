"""An app whose signal receivers write what they received to a file (SIGNALS_LOG), one JSON line
per signal with the process id, so a test can check where and how often each fired."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from conveyor import Conveyor, Task
from conveyor import signals as sig
from conveyor.utils.log import get_task_logger

app = Conveyor("signals")
if "SIGNALS_LEASE" in os.environ:  # a short lease: heartbeats every lease/3 seconds
    app.conf.update(
        broker_transport_options={"visibility_timeout": float(os.environ["SIGNALS_LEASE"])}
    )
logger = get_task_logger("signals_app.tasks")


def _write(entry: dict[str, Any]) -> None:
    line = json.dumps({"pid": os.getpid(), **entry}, default=repr) + "\n"
    fd = os.open(os.environ["SIGNALS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)


def _receiver(name: str) -> Any:
    def receive(signal: sig.Signal, sender: Any, **kwargs: Any) -> None:
        entry: dict[str, Any] = {"signal": name, "args": sorted(kwargs)}
        entry["sender"] = (
            sender.name
            if isinstance(sender, Task)
            else sender
            if isinstance(sender, str)
            else type(sender).__name__
        )
        task = kwargs.get("task")
        entry["task_is_sender"] = task is sender if task is not None else None
        request = kwargs.get("request")
        headers = kwargs.get("headers") or {}
        entry["task_id"] = (
            kwargs.get("task_id")
            or (request.id if request is not None else None)
            or kwargs.get("id")
            or headers.get("id")
        )
        if request is not None:
            entry["request"] = [request.task, request.args, request.kwargs, request.hostname]
        values = ["state", "result", "retval", "exitcode", "args", "kwargs", "expired"]
        values += ["terminated", "signum", "sig", "how", "routing_key", "exchange"]
        for key in values:
            if key in kwargs:
                entry[f"value_{key}"] = kwargs[key]
        for key in ("exception", "reason"):
            if key in kwargs:
                entry[f"value_{key}"] = type(kwargs[key]).__name__
        if "einfo" in kwargs:
            entry["einfo_type"] = kwargs["einfo"].type.__name__
        _write(entry)

    receive.__name__ = f"on_{name}"
    return receive


NAMES = [
    "task_prerun",
    "task_postrun",
    "task_success",
    "task_failure",
    "task_retry",
    "worker_process_init",
    "worker_process_shutdown",
    "after_setup_logger",
    "worker_init",
    "worker_shutdown",
    "beat_init",
    "before_task_publish",
    "after_task_publish",
    "task_received",
    "task_revoked",
    "worker_ready",
    "heartbeat_sent",
    "worker_shutting_down",
]
for _name in NAMES:
    getattr(sig, _name).connect(_receiver(_name), weak=False)


@sig.task_prerun.connect
def broken(**kwargs: Any) -> None:
    """A receiver that always raises: the tasks' outcomes must not change."""
    raise RuntimeError("broken receiver")


@sig.task_revoked.connect
def seed(request: Any, **kwargs: Any) -> None:
    """The handler issue 15 quotes: it must work unchanged."""
    logger.warning(f"Task revoked: {request.id}")


class _ToFile(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        task_id, task_name = getattr(record, "task_id", None), getattr(record, "task_name", None)
        _write({"log": record.getMessage(), "task_id": task_id, "task_name": task_name})


logger.addHandler(_ToFile())
logger.setLevel(logging.INFO)


@app.task(name="signals.add")
def add(x: int, y: int) -> int:
    logger.info("adding")
    return x + y


@app.task(name="signals.fail")
def fail(x: int) -> None:
    raise ValueError(f"cannot handle {x}")


@app.task(name="signals.flaky", bind=True, max_retries=2)
def flaky(self: Task) -> int:
    if self.request.retries == 0:
        raise self.retry(exc=TimeoutError("slow"), countdown=0)
    return self.request.retries
