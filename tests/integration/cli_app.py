"""The app of the Celery command-line tests (imported as `cli_app`): a plain logger and a task
logger inside a task, and a task that outlasts a worker's --soft-time-limit."""

from __future__ import annotations

import logging
import time

from conveyor import Conveyor, SoftTimeLimitExceeded
from conveyor.utils.log import get_task_logger

app = Conveyor("cliapp")
plain = logging.getLogger("cli_app.plain")
task_log = get_task_logger("cli_app.tasks")


@app.task(name="cli.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="cli.chatty")
def chatty(word: str) -> str:
    plain.info("plain logger says %s", word)
    task_log.info("task logger says %s", word)
    return word


@app.task(name="cli.nap")
def nap(seconds: float) -> str:
    try:
        time.sleep(seconds)  # the workload; the worker's --soft-time-limit interrupts it
    except SoftTimeLimitExceeded:
        return "interrupted"
    return "slept"
