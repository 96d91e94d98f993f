"""Schedules for periodic tasks, under the module name Celery users import them from
(`from celery.schedules import crontab` becomes `from conveyor.schedules import crontab`)."""

from __future__ import annotations

from .scheduler.cron import crontab

__all__ = ["crontab"]
