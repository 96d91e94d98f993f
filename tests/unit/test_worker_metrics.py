"""WorkerMetrics counts a solo worker's task events (memory app, FakeClock), reads the slot
groups at scrape time, and serves /metrics from a registry of its own."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from conveyor import Conveyor, Task
from conveyor.errors import ConfigurationError
from conveyor.events import TaskFailed, TaskRevoked, TaskSucceeded
from conveyor.worker.metrics import COUNTED, GroupSlots, WorkerMetrics
from conveyor.worker.worker import Worker, default_options


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_solo_workers_events_are_counted(mem_app: Conveyor) -> None:
    @mem_app.task(name="t.ok")
    def ok() -> None:
        pass

    @mem_app.task(name="t.bad")
    def bad() -> None:
        raise KeyError("k")

    @mem_app.task(name="t.again", bind=True)
    def again(self: Task) -> None:
        if self.request.retries == 0:
            raise self.retry(countdown=0)

    metrics = WorkerMetrics("9.9", lambda: [GroupSlots("celery:1:solo", 1, 0)])
    sub = mem_app.events.subscribe(metrics.observe, COUNTED)
    for call in (ok, ok, bad, again):
        call.delay()
    worker = Worker(mem_app, default_options(mem_app, name="w@test"))
    worker.run_until_idle()
    assert sub.close(5.0)
    labels = {"queue": mem_app.conf.settings.task_default_queue}
    assert sample(metrics, "conveyor_tasks_received_total", task="t.ok", **labels) == 2
    assert sample(metrics, "conveyor_tasks_started_total", task="t.again", **labels) == 2
    assert sample(metrics, "conveyor_tasks_succeeded_total", task="t.ok", **labels) == 2
    assert sample(metrics, "conveyor_tasks_retried_total", task="t.again", **labels) == 1
    failed = {"task": "t.bad", "exception": "KeyError", **labels}
    assert sample(metrics, "conveyor_tasks_failed_total", **failed) == 1
    assert sample(metrics, "conveyor_task_runtime_seconds_count", task="t.ok", **labels) == 2
    assert sample(metrics, "conveyor_task_runtime_seconds_count", task="t.bad", **labels) == 1
    assert sample(metrics, "conveyor_task_runtime_seconds_count", task="t.again", **labels) == 1
    assert sample(metrics, "conveyor_worker_slots", group="celery:1:solo") == 1
    assert sample(metrics, "conveyor_build_info", version="9.9") == 1


def test_runtimes_fall_in_their_buckets_and_revoked_has_an_empty_queue() -> None:
    metrics = WorkerMetrics("1", list)
    h, u = "h", "u"
    metrics.observe(TaskSucceeded(hostname=h, timestamp=0, uuid=u, name="t", queue="q", runtime=2))
    failed = TaskFailed(
        hostname=h, timestamp=0, uuid=u, name="t", queue="q", runtime=1500.0, exception="E('x')"
    )
    metrics.observe(failed)
    metrics.observe(TaskRevoked(hostname=h, timestamp=0, uuid=u, name="t", expired=True))
    labels = {"task": "t", "queue": "q"}
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="1.0", **labels) == 0
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="2.5", **labels) == 1
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="1800.0", **labels) == 2
    assert sample(metrics, "conveyor_task_runtime_seconds_sum", **labels) == 1502.0
    assert sample(metrics, "conveyor_tasks_failed_total", exception="E", **labels) == 1
    assert sample(metrics, "conveyor_tasks_revoked_total", task="t", queue="") == 1


def test_serve_answers_on_its_port_and_stop_closes_it() -> None:
    metrics = WorkerMetrics("1", lambda: [GroupSlots("q:4:threads", 4, 3)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    finally:
        metrics.stop()
    assert 'conveyor_worker_slots_busy{group="q:4:threads"} 3.0' in text
    assert "conveyor_worker_up 1.0" in text
    assert "python_gc" not in text  # the worker's own registry, not the global one
    assert sample(metrics, "conveyor_worker_up") == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match="choose a free port"):
            WorkerMetrics("1", list).serve("127.0.0.1", port)


def test_the_port_setting_is_checked(mem_app: Conveyor) -> None:
    mem_app.conf.worker_metrics_port = 9808
    assert mem_app.conf.settings.worker_metrics_port == 9808
    with pytest.raises(ConfigurationError, match="TCP port"):
        mem_app.conf.worker_metrics_port = 70000
