"""Log line formats: `text` (Celery's worker format) and `json` (one JSON object per line, for
log collectors). Both show every URL without its secrets.

The text format is Celery's: `[%(asctime)s: %(levelname)s/%(processName)s] %(message)s` for
every logger, and for the task loggers (those under `conveyor.task`, which
`get_task_logger(__name__)` returns) the task format, which adds `%(task_name)s[%(task_id)s]: `
before the message (both "???" outside a task). A plain `logging.getLogger(__name__)` in a task
module logs through the root logger in the first format, at the worker's `-l` level.

A JSON line has `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, `exc_info` (the
traceback text) when the record has one, and the call fields a record carries: `task_id`,
`task_name`, `queue`, `attempt`, `retries`, `state`, `runtime` (seconds) and `worker`. The worker
passes them as `extra=` on the line it logs for each settled call; task loggers
(`conveyor.log.get_task_logger`) add `task_id` and `task_name`, left out while they are "???"
(outside a task). Task arguments are never among them."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Any

import msgspec

from ._urls import mask_urls_in
from .log import TASK_LOGGER, UNKNOWN, TaskContextFilter

FORMATS = ("text", "json")
#: Values JSON has no type for (an `extra=` object) are written as their str().
_ENCODER = msgspec.json.Encoder(enc_hook=str)
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
#: The text format of records from task loggers (Celery's worker_task_log_format).
TASK_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(task_name)s[%(task_id)s]: %(message)s"
#: The fields a record may carry about a call, in the order a JSON line shows them.
CALL_FIELDS = ("task_id", "task_name", "queue", "attempt", "retries", "state", "runtime", "worker")
#: Set by `configure` so that a process-pool child (started later, from a fork server) logs in
#: the same format and at the same level as its worker.
ENV_FORMAT = "CONVEYOR_LOG_FORMAT"
ENV_LEVEL = "CONVEYOR_LOG_LEVEL"
ENV_FILE = "CONVEYOR_LOG_FILE"


class MaskingFormatter(logging.Formatter):
    """Formats as usual, then shows every URL in the line (tracebacks included) without its
    secrets: a last line of defence for log lines built from texts conveyor did not write."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls_in(super().format(record))


_CONTEXT = TaskContextFilter()


class TextFormatter(MaskingFormatter):
    """Celery's text lines: TASK_FORMAT for records of task loggers (TASK_LOGGER and the
    loggers under it), TEXT_FORMAT for the others; URLs masked."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._task = MaskingFormatter(TASK_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if _is_task_logger(record.name):
            if not hasattr(record, "task_id"):  # a logger under a task logger has no filter
                _CONTEXT.filter(record)
            return self._task.format(record)
        return super().format(record)


def _is_task_logger(name: str) -> bool:
    """Whether the logger `name` is TASK_LOGGER or has it among its ancestors (checked on the
    live hierarchy: get_task_logger re-parents loggers that are not named under it). Read
    from the manager's dict, without logging's module lock: this runs for every text line."""
    found = logging.Logger.manager.loggerDict.get(name)
    logger = found if isinstance(found, logging.Logger) else None
    while logger is not None:
        if logger.name == TASK_LOGGER:
            return True
        logger = logger.parent
    return False


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; message and traceback URL-masked."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_urls_in(record.getMessage()),
        }
        for name in CALL_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != UNKNOWN:
                out[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc_info"] = mask_urls_in(record.exc_text)
        if record.stack_info:
            out["stack_info"] = mask_urls_in(self.formatStack(record.stack_info))
        return _ENCODER.encode(out).decode()

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with microseconds (always six digits); the part up to the second
        is formatted once per second (a busy worker logs thousands of lines in one)."""
        second = int(created)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S"
            )
            self._second = second
        micros = min(int((created - second) * 1_000_000), 999_999)
        return f"{self._prefix}.{micros:06d}+00:00"


def check_format(value: str) -> str:
    """`value` if it names a format; otherwise a ValueError saying which ones exist."""
    if value not in FORMATS:
        raise ValueError(f"unknown log format {value!r}: use one of {', '.join(FORMATS)}")
    return value


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of the format named `fmt` ("text" or "json")."""
    return JsonFormatter() if check_format(fmt) == "json" else TextFormatter()


def configure(fmt: str, level: int, handler: logging.Handler, logfile: str | None = None) -> None:
    """Make `handler`, in format `fmt`, the root logger's only handler at `level`, and remember
    the three (`logfile`: where `handler` writes, None for stderr) in the environment for the
    process-pool children this process starts later."""
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    os.environ[ENV_FORMAT] = fmt
    os.environ[ENV_LEVEL] = str(level)
    if logfile is None:
        os.environ.pop(ENV_FILE, None)
    else:
        os.environ[ENV_FILE] = logfile


def configure_child() -> None:
    """In a process-pool child: log as the worker that started it does (see `configure`), to
    its log file or to stderr; nothing when that worker did not configure logging (a
    `setup_logging` receiver did, or it runs embedded)."""
    fmt = os.environ.get(ENV_FORMAT)
    level = os.environ.get(ENV_LEVEL)
    if fmt not in FORMATS or level is None or not level.isdigit():
        return
    logfile = os.environ.get(ENV_FILE)
    try:
        handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    except OSError:  # the worker opened it a moment ago; if it is gone, stderr still works
        handler = logging.StreamHandler()
    configure(fmt, int(level), handler, logfile)


def banner(text: str, logger: str, fmt: str) -> str:
    """A start-up line the CLI prints to stderr, as one JSON line in the json format (so that
    every line parses) and as itself otherwise."""
    if fmt != "json":
        return text
    record = logging.LogRecord(logger, logging.INFO, __file__, 0, text, None, None)
    return JsonFormatter().format(record)


__all__ = [
    "CALL_FIELDS",
    "ENV_FILE",
    "ENV_FORMAT",
    "ENV_LEVEL",
    "FORMATS",
    "TASK_FORMAT",
    "TEXT_FORMAT",
    "JsonFormatter",
    "MaskingFormatter",
    "TextFormatter",
    "banner",
    "check_format",
    "configure",
    "configure_child",
    "formatter",
]
