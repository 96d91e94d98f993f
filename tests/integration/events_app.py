"""An app for the `conveyor events` tests: a task that succeeds, one that fails, and one that
retries once and then succeeds. Leases of 3 s make the worker heartbeat every second."""

from __future__ import annotations

from conveyor import Conveyor, Task

app = Conveyor("events")
app.conf.update(visibility_timeout=3.0)


@app.task(name="events.ok")
def ok(x: int) -> int:
    return x


@app.task(name="events.fail")
def fail() -> None:
    raise ValueError("no luck")


@app.task(name="events.flaky", bind=True)
def flaky(self: Task) -> int:
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return self.request.retries
