"""What `beat -s/-S` and `beat_scheduler` (accepted, not used) make the scheduler say."""

from __future__ import annotations

import logging

import pytest

from conveyor.scheduler.foreign import ignored_notice


@pytest.mark.parametrize("option", ["django_celery_beat.schedulers:DatabaseScheduler", "django"])
def test_django_celery_beat_is_a_warning_that_its_tables_are_not_read(option: str) -> None:
    notice = ignored_notice(option, "sqlite:///x.db")
    assert notice is not None
    level, message = notice
    assert level == logging.WARNING
    assert "are NOT read" in message and "beat_schedule" in message and "x.db" in message


def test_another_schedule_file_or_class_is_an_info_line() -> None:
    assert ignored_notice("celerybeat-schedule", "redis://h/0") == (
        logging.INFO,
        "-s/-S celerybeat-schedule not used: the schedule is kept in redis://h/0",
    )


def test_nothing_given_nothing_said() -> None:
    assert ignored_notice(None, "redis://h/0") is None
