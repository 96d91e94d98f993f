"""An app for the structured-log tests: a task that logs through a task logger (with a URL
carrying a password in its message), one that succeeds and one that fails."""

from __future__ import annotations

from conveyor import Conveyor
from conveyor.log import get_task_logger

app = Conveyor("jsonlog")
logger = get_task_logger("jsonlog_app.tasks")


@app.task(name="jsonlog.greet")
def greet(name: str) -> str:
    logger.warning("greeting %s via redis://user:hunter2@cache.example:6379/0", name)
    return f"hello {name}"


@app.task(name="jsonlog.fail")
def fail() -> None:
    raise ValueError("no luck")
