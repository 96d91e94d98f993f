"""A Redis server that persists nothing (`appendonly no`, `save ""` — how the test server
runs) is warned about once by a producer process and once by a worker process."""

from __future__ import annotations

import pytest

from conveyor import Conveyor
from conveyor.brokers.base import QueueStats
from conveyor.redis_persistence import persists_nothing

from .. import services
from .conftest import Places
from .helpers import Remote, log_of, python, wait_until, worker

pytestmark = pytest.mark.slow
WARNING = "has no persistence"


@pytest.fixture
def backend_name() -> str:
    return "redis"


def test_producer_and_worker_processes_each_warn_once(places: Places) -> None:
    import redis

    probe = redis.Redis.from_url(services.REDIS_URL)
    try:
        # .ci/run starts it without persistence; a developer's server that persists must
        # give no warning at all
        expected = 1 if persists_nothing(probe) else 0
    finally:
        probe.close()
    where = places("persist")
    assert isinstance(where, Remote)
    sent = python(
        where,
        "from sample_app import add, app\n"
        "for i in range(3):\n"
        "    add.delay(i, 1)\n"
        "app.close()\n"
        "add.delay(9, 1)  # the broker opened again in the same process\n",
    )
    assert sent.stderr.count(WARNING) == expected, sent.stderr
    with worker(where, "-P", "threads", "-c", "2") as proc:
        wait_until(lambda: "ready" in log_of(proc), 60, "the worker to start")
        wait_until(lambda: not any(s.ready for s in _stats(where)), 60, "the calls to run")
        assert log_of(proc).count(WARNING) == expected, log_of(proc)


def _stats(where: Remote) -> list[QueueStats]:
    app = Conveyor("reader", broker=where.url, set_as_current=False)
    try:
        return app.broker.queue_stats()
    finally:
        app.close()
