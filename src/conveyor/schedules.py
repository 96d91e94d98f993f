"""Schedules for periodic tasks, under the module name Celery users import them from
(`from celery.schedules import crontab` becomes `from conveyor.schedules import crontab`)."""

from __future__ import annotations

from .scheduler.cron import crontab
from .scheduler.schedule import schedule
from .scheduler.solar import solar

__all__ = ["crontab", "schedule", "solar"]
