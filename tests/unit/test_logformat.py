"""The log formats: the JSON formatter's fields, masking, tracebacks and task-logger fields."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigurationError
from conveyor.log import TaskContextFilter, get_task_logger
from conveyor.logformat import JsonFormatter, banner, check_format, formatter
from conveyor.request import Request, running


def _record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("conveyor.worker", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_base_fields_in_utc() -> None:
    record = _record("worker %s ready", "w1")
    record.created = 0.0
    line = json.loads(JsonFormatter().format(record))
    assert line == {
        "timestamp": "1970-01-01T00:00:00.000000+00:00",
        "level": "INFO",
        "logger": "conveyor.worker",
        "message": "worker w1 ready",
    }


def test_the_call_fields_passed_as_extra_are_emitted() -> None:
    fields = {"task_id": "t1", "task_name": "proj.add", "queue": "default", "attempt": 2}
    fields |= {"retries": 1, "state": "SUCCESS", "runtime": 0.25, "worker": "w@h"}
    line = json.loads(JsonFormatter().format(_record("task done", **fields)))
    assert {k: line[k] for k in fields} == fields


def test_a_password_in_a_url_in_the_message_is_masked() -> None:
    record = _record("connecting to %s", "redis://user:s3cret@cache:6379/0")
    text = JsonFormatter().format(record)
    assert "s3cret" not in text
    assert json.loads(text)["message"] == "connecting to redis://user:***@cache:6379/0"


def test_the_traceback_is_emitted_and_masked() -> None:
    try:
        raise RuntimeError("lost postgresql://app:pw123@db:5432/x")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    text = JsonFormatter().format(record)
    line = json.loads(text)
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: lost postgresql://app:***@db:5432/x" in line["exc_info"]
    assert "pw123" not in text


def test_a_task_logger_record_carries_the_running_call() -> None:
    record = _record("inside")
    with running(Request(id="abc", task="proj.add")):
        TaskContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert (line["task_id"], line["task_name"]) == ("abc", "proj.add")


def test_outside_a_task_the_unknown_call_fields_are_left_out() -> None:
    record = _record("outside")
    TaskContextFilter().filter(record)
    assert "task_id" not in json.loads(JsonFormatter().format(record))


def test_the_text_format_is_celerys_line_and_masks_urls() -> None:
    record = _record("to %s", "amqp://u:pw@h//")
    record.processName = "MainProcess"
    text = formatter("text").format(record)
    assert re.fullmatch(r"\[[-0-9]+ [0-9:,]+: INFO/MainProcess\] to amqp://u:\*\*\*@h//", text)


def test_a_task_logger_line_has_celerys_task_format() -> None:
    logger = get_task_logger("tests.unit.logformat_tasks")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "adding", (), None)
    with running(Request(id="abc", task="proj.add")):
        TaskContextFilter().filter(record)
    text = formatter("text").format(record)
    assert text.endswith("INFO/MainProcess] proj.add[abc]: adding")


def test_a_plain_logger_line_has_no_task_fields_even_inside_a_task() -> None:
    record = _record("plain")
    with running(Request(id="abc", task="proj.add")):
        text = formatter("text").format(record)
    assert text.endswith("] plain")
    assert "proj.add" not in text


def test_an_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="use one of text, json"):
        check_format("xml")
    with pytest.raises(ConfigurationError, match="worker_log_format='xml': use one of text, json"):
        Conveyor("x").conf.update(worker_log_format="xml")


def test_a_banner_is_json_in_the_json_format_and_itself_otherwise() -> None:
    assert banner("hello", "conveyor.worker", "text") == "hello"
    assert json.loads(banner("hello", "conveyor.worker", "json"))["message"] == "hello"
