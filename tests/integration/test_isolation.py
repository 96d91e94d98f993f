"""The seed's starvation, on one worker: `high` notifications (10 ms) arrive 20 per second while
`low` holds a backlog of 50 scrapes of 5 s. With slot groups (`-Q high,default:3 -Q low:1`)
the notifications start within 200 ms (p99); with one shared group of the same four slots they
wait behind the scrapes for seconds, which shows the test would fail without isolation.

Waits are measured from the stored outcomes (`started_at`) against the producer's send time.
"""

from __future__ import annotations

import json
import os

import pytest

from conveyor import Conveyor
from conveyor.states import TaskState

from .conftest import Places
from .helpers import Where, log_of, python, start_worker, stop_worker, url_of, wait_until

pytestmark = pytest.mark.slow

HIGH = 160  # 8 s of notifications at 20 per second
PRODUCER = f"""
import json, time
import seed_app as s
scrape = s.app.tasks["sii.sync_documents"]
notify = s.app.tasks["notifications.process_pending"]
for _ in range(50):
    scrape.delay(5.0)
start = time.time()
sent = {{}}
for i in range({HIGH}):
    # pacing the load generator at 20 per second (this is the arrival rate, not a wait)
    time.sleep(max(0.0, start + 0.05 * i - time.time()))
    sent[notify.delay(0.01).id] = time.time()
print(json.dumps(sent))
"""


def high_waits(db: Where, *worker_args: str) -> list[float]:
    """Run the scenario against one worker; the sorted enqueue-to-start waits of `high`."""
    proc = start_worker(db, "-P", "process", *worker_args, app="seed_app")
    reader = Conveyor("reader", broker=url_of(db), set_as_current=False)
    try:
        wait_until(lambda: "ready" in log_of(proc), 60, "the worker to start")
        sent: dict[str, float] = json.loads(python(db, PRODUCER).stdout)

        def all_started() -> bool:
            assert proc.poll() is None, log_of(proc)[-3000:]
            outcomes = reader.results.get_many(list(sent)).values()
            return sum(o.state is TaskState.SUCCESS for o in outcomes) == len(sent)

        wait_until(all_started, 120, "every notification to finish")
        outcomes = reader.results.get_many(list(sent)).values()
        return sorted(o.started_at - sent[o.task_id] for o in outcomes if o.started_at)
    finally:
        os.kill(proc.pid, 9)  # the scrape backlog is not this test's business
        stop_worker(proc)
        reader.close()


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


@pytest.mark.every_backend
def test_slot_groups_keep_notifications_fast_beside_a_slow_backlog(places: Places) -> None:
    isolated = high_waits(places("isolated"), "-Q", "high,default:3", "-Q", "low:1")
    shared = high_waits(places("shared"), "-Q", "high,default,low:4")
    print(
        f"\nhigh wait p50/p99: isolated {isolated[len(isolated) // 2] * 1000:.0f}/"
        f"{p99(isolated) * 1000:.0f} ms, shared {shared[len(shared) // 2] * 1000:.0f}/"
        f"{p99(shared) * 1000:.0f} ms"
    )
    assert len(isolated) == len(shared) == HIGH
    assert p99(isolated) < 0.2
    assert p99(shared) > 1.0  # the starvation isolation prevents
