"""An app shaped like the seed write-up's: 17 tasks (notifications, calendar, memory, whatsapp,
SII scraping) and the routes of its fixed configuration, 2 → high, 9 → default, 6 → low.

SEED_ROUTES=broken swaps in the routes it first shipped, which match none of the tasks.
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor, Queue

app = Conveyor("seed_app")
app.conf.task_default_queue = "default"  # the seed project named its default queue so
app.conf.task_queues = [Queue("high"), Queue("default"), Queue("low")]
app.conf.task_routes = {
    "notifications.process_pending": {"queue": "high"},
    "notifications.sync_calendar": {"queue": "high"},
    "notifications.process_template_notification": {"queue": "default"},
    "calendar.*": {"queue": "default"},
    "memory.*": {"queue": "default"},
    "whatsapp.*": {"queue": "default"},
    "sii.*": {"queue": "low"},
}
if os.environ.get("SEED_ROUTES") == "broken":
    app.conf.task_routes = {
        "app.infrastructure.celery.tasks.whatsapp.whatsapp_tasks.*": {"queue": "high"},
        "app.infrastructure.celery.tasks.documents.document_tasks.*": {"queue": "default"},
        "app.infrastructure.celery.tasks.sii.sii_tasks.*": {"queue": "low"},
        "app.infrastructure.celery.tasks.sii.sync_tasks.*": {"queue": "low"},
    }

NAMES = [
    "notifications.process_pending",
    "notifications.sync_calendar",
    "notifications.process_template_notification",
    "calendar.sync_company",
    "calendar.sync_all_companies",
    "calendar.activate_mandatory_events",
    "calendar.assign_auto_notifications",
    "memory.save_user_memories",
    "memory.save_company_memories",
    "memory.save_onboarding_memories",
    "whatsapp.cleanup_old_sessions",
    "sii.sync_documents",
    "sii.sync_documents_all_companies",
    "sii.sync_f29",
    "sii.sync_f29_all_companies",
    "sii.sync_f29_pdfs_missing",
    "sii.sync_f29_pdfs_missing_all_companies",
]


def busy(seconds: float = 0.0) -> None:
    """Stands in for the real work: a notification takes 10 ms, a scrape seconds."""
    time.sleep(seconds)


for _name in NAMES:
    scraping = _name.startswith("sii.")
    app.task(name=_name, soft_time_limit=1500 if scraping else None)(busy)
