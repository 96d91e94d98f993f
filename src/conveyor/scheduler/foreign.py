"""What `beat -s FILE` / `-S CLASS` and the `beat_scheduler` setting (Celery's schedule file
and scheduler class) mean here.

conveyor's scheduler keeps its schedule and its progress in the result backend's database, so
neither option changes anything; both are accepted so Celery command lines keep working, and
the scheduler says so when it starts. django_celery_beat's DatabaseScheduler gets a warning of
its own: its entries live in Django's tables (edited in the Django admin), which conveyor does
not read — those entries must move to `beat_schedule` or `conveyor schedule add`.
"""

from __future__ import annotations

import logging

DJANGO_CELERY_BEAT = "django_celery_beat"


def ignored_notice(option: str | None, store: str) -> tuple[int, str] | None:
    """(log level, message) for a `-s`/`-S` value that is accepted and not used, or None when
    none was given. `store` names where the schedule is kept instead."""
    if not option:
        return None
    if option == "django" or option.startswith(DJANGO_CELERY_BEAT):  # "django": its alias
        return logging.WARNING, (
            f"scheduler {option} (--scheduler or beat_scheduler): conveyor's scheduler "
            f"keeps its schedule in {store} already; the periodic tasks stored in "
            "django_celery_beat's tables (the Django admin) are NOT read. Define them "
            "in beat_schedule (CELERY_BEAT_SCHEDULE) or with `conveyor schedule add`"
        )
    return logging.INFO, f"-s/-S {option} not used: the schedule is kept in {store}"
