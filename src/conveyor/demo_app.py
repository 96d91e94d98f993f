"""The example app `conveyor demo` runs: two queues, a task that retries, one that fails.

Every task names its queue (`emails`, `reports`), so the demo worker consumes those two; a task
without one would go to `celery`, the default queue (`task_default_queue`), as in Celery.

It names no broker, so it runs on the embedded SQLite default (the demo points
CONVEYOR_BROKER_URL at its own file so it never touches your ./conveyor.db).
"""

from __future__ import annotations

import time

from conveyor import Conveyor, Task

app = Conveyor("demo")


@app.task(name="demo.send_email", queue="emails")
def send_email(user_id: int) -> str:
    time.sleep(0.05 + (user_id % 3) * 0.03)
    return f"welcome email sent to user {user_id}"


@app.task(name="demo.build_report", queue="reports", priority=3)
def build_report(month: int) -> dict[str, int]:
    time.sleep(0.2)
    return {"month": month, "rows": month * 1000}


@app.task(name="demo.sync_calendar", queue="emails", bind=True, max_retries=3)
def sync_calendar(self: Task, account: str, flaky_times: int) -> str:
    """Fails `flaky_times` times with a timeout, retrying after half a second."""
    request = self.request
    if request.retries < flaky_times:
        raise self.retry(
            exc=TimeoutError(f"calendar API timed out for {account}"),
            countdown=0.5,
        )
    return f"{account} synced after {request.retries} retries"


@app.task(name="demo.charge_card", queue="reports", max_retries=0)
def charge_card(order_id: int) -> str:
    raise ValueError(f"card declined for order {order_id}")
