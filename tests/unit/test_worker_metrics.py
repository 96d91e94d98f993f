"""WorkerMetrics counts a solo worker's task events (memory app, FakeClock), reads the slot
groups at scrape time, and serves /metrics from a registry of its own."""

from __future__ import annotations

import socket
import urllib.request
from typing import cast

import pytest

from conveyor import Conveyor, Task, chain
from conveyor.brokers.base import Envelope
from conveyor.clock import FakeClock
from conveyor.errors import ConfigurationError
from conveyor.events import TaskFailed, TaskRevoked, TaskStarted, TaskSucceeded
from conveyor.events.bus import Subscription
from conveyor.message import Message, decode_message, encode_message
from conveyor.options import CallOptions
from conveyor.worker.celery_metrics import exception_class, host_of
from conveyor.worker.metrics import COUNTED, GroupSlots, WorkerMetrics
from conveyor.worker.worker import Worker, default_options


def sample(metrics: WorkerMetrics, name: str, /, **labels: str) -> float | None:
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


def test_runtimes_fall_in_their_buckets_and_revoked_has_its_queue() -> None:
    metrics = WorkerMetrics("1", list)
    h, u = "h", "u"
    metrics.observe(TaskSucceeded(hostname=h, timestamp=0, uuid=u, name="t", queue="q", runtime=2))
    failed = TaskFailed(
        hostname=h, timestamp=0, uuid=u, name="t", queue="q", runtime=1500.0, exception="E('x')"
    )
    metrics.observe(failed)
    metrics.observe(TaskRevoked(hostname=h, timestamp=0, uuid=u, name="t", queue="q"))
    metrics.observe(TaskRevoked(hostname=h, timestamp=0, uuid=u, name="t"))  # an older worker's
    labels = {"task": "t", "queue": "q"}
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="1.0", **labels) == 0
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="2.5", **labels) == 1
    assert sample(metrics, "conveyor_task_runtime_seconds_bucket", le="1800.0", **labels) == 2
    assert sample(metrics, "conveyor_task_runtime_seconds_sum", **labels) == 1502.0
    assert sample(metrics, "conveyor_tasks_failed_total", exception="E", **labels) == 1
    assert sample(metrics, "conveyor_tasks_revoked_total", task="t", queue="q") == 1
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


def started_events(app: Conveyor) -> tuple[list[TaskStarted], Subscription]:
    seen: list[TaskStarted] = []
    sub = app.events.subscribe(lambda e: seen.append(cast(TaskStarted, e)), ["task-started"])
    return seen, sub


def test_every_way_of_sending_records_a_send_time(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    @mem_app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    sent = fake_clock.now()
    ids = [add.delay(1, 2).id, mem_app.send_many(add, [(1, 2), (3, 4)])[0].id]
    ids.append(mem_app.send_task("t.add", (1, 1)).id)
    assert mem_app.send_once("t.add", (5, 5), {}, CallOptions(task_id="fixed"))  # beat's way
    ids.append("fixed")
    for task_id in ids:
        stored = mem_app.broker.get_message(task_id)
        assert stored is not None
        assert decode_message(stored.envelope.body).sent_at == sent
    # A chain's next step is sent by the worker as the first one settles
    seen, sub = started_events(mem_app)
    chain(add.s(1, 1), add.s(10)).delay()
    Worker(mem_app, default_options(mem_app, name="w@test")).run_until_idle()
    assert sub.close(5.0)
    assert [e.name for e in seen] == ["t.add"] * 7
    assert all(e.queued_at == sent for e in seen)


def test_queue_wait_counts_from_the_due_time(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    @mem_app.task(name="t.ok")
    def ok() -> None:
        pass

    @mem_app.task(name="t.again", bind=True)
    def again(self: Task) -> None:
        if self.request.retries == 0:
            raise self.retry(countdown=5)

    metrics = WorkerMetrics("1", list)
    sub = mem_app.events.subscribe(metrics.observe, COUNTED)
    seen, started_sub = started_events(mem_app)
    t0 = fake_clock.now()
    ok.delay()  # due at once: waits 12 s
    ok.apply_async(countdown=10)  # due at t0 + 10: waits 2 s, not 12
    again.delay()  # due at once: waits 12 s; its retry is due 5 s after the first run
    # A message of an older producer says nothing of when it was sent: not observed
    old = Message(id="old-one", task="t.ok")
    queue = mem_app.conf.settings.task_default_queue
    mem_app.broker.enqueue([Envelope("old-one", queue, encode_message(old, 1 << 20))])
    fake_clock.advance(12.0)
    worker = Worker(mem_app, default_options(mem_app, name="w@test"))
    worker.run_until_idle()
    fake_clock.advance(7.0)  # the retry is due 5 s after the run, and starts 2 s late
    worker.run_until_idle()
    assert sub.close(5.0) and started_sub.close(5.0)
    assert len(seen) == 5
    retried = [e for e in seen if e.retries == 1]
    assert len(retried) == 1 and retried[0].queued_at == t0 + 12.0 + 5.0
    q = {"queue": queue}
    name = "conveyor_task_queue_wait_seconds"
    assert sample(metrics, f"{name}_count", task="t.ok", **q) == 2  # the old message: none
    assert sample(metrics, f"{name}_sum", task="t.ok", **q) == 12.0 + 2.0
    assert sample(metrics, f"{name}_bucket", task="t.ok", le="2.5", **q) == 1
    assert sample(metrics, f"{name}_count", task="t.again", **q) == 2
    assert sample(metrics, f"{name}_sum", task="t.again", **q) == 12.0 + 2.0
    started = sample(metrics, "conveyor_tasks_started_total", task="t.ok", **q)
    assert started == 3


def test_a_wait_is_clipped_at_zero_when_the_producers_clock_is_ahead() -> None:
    metrics = WorkerMetrics("1", list)
    ahead = TaskStarted(
        hostname="h", timestamp=100.0, uuid="u", name="t", queue="q", attempt=1, pid=1,
        queued_at=103.5,
    )  # fmt: skip
    metrics.observe(ahead)
    assert sample(metrics, "conveyor_task_queue_wait_seconds_count", task="t", queue="q") == 1
    assert sample(metrics, "conveyor_task_queue_wait_seconds_sum", task="t", queue="q") == 0


def test_revoked_calls_are_counted_in_their_queue(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    @mem_app.task(name="t.ok")
    def ok() -> None:
        pass

    metrics = WorkerMetrics("1", list)
    sub = mem_app.events.subscribe(metrics.observe, COUNTED)
    ok.apply_async(queue="slow", expires=5.0)
    fake_clock.advance(10.0)
    Worker(mem_app, default_options(mem_app, queues=("slow",), name="w@test")).run_until_idle()
    assert sub.close(5.0)
    assert sample(metrics, "conveyor_tasks_revoked_total", task="t.ok", queue="slow") == 1
    assert sample(metrics, "conveyor_tasks_revoked_total", task="t.ok", queue="") is None


def test_counters_start_at_zero_for_every_task_and_queue() -> None:
    metrics = WorkerMetrics(
        "1", list, worker_name="w@host", tasks=["a", "b", "a"], queues=["q1", "q2"],
        celery_names=True,
    )  # fmt: skip
    for word in ("received", "started", "succeeded", "retried", "revoked", "rejected"):
        for task in ("a", "b"):
            for queue in ("q1", "q2"):
                labels = {"task": task, "queue": queue}
                assert sample(metrics, f"conveyor_tasks_{word}_total", **labels) == 0
                celery = {"name": task, "hostname": "host", "queue_name": queue}
                assert sample(metrics, f"celery_task_{word}_total", **celery) == 0
    names = {s.name for m in metrics.registry.collect() for s in m.samples if s.value == 0}
    assert "conveyor_tasks_failed_total" not in names  # its exception is not known yet
    failed = {"name": "a", "hostname": "host", "queue_name": "q1", "exception": ""}
    assert sample(metrics, "celery_task_failed_total", **failed) == 0  # as the exporter does
    series = [
        s for m in metrics.registry.collect() for s in m.samples
        if s.name == "conveyor_tasks_received_total"
    ]  # fmt: skip
    assert len(series) == 4  # tasks × queues, no more


def test_celery_names_agree_with_conveyors(mem_app: Conveyor, fake_clock: FakeClock) -> None:
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

    q = mem_app.conf.settings.task_default_queue
    metrics = WorkerMetrics(
        "1",
        lambda: [GroupSlots("a:2:threads", 2, 1), GroupSlots("b:3:threads", 3, 2)],
        worker_name="celery@web-1",
        tasks=sorted(mem_app.tasks),
        queues=[q],
        celery_names=True,
    )
    sub = mem_app.events.subscribe(metrics.observe, COUNTED)
    for call in (ok, ok, bad, again):
        call.delay()
    ok.apply_async(expires=1.0)
    fake_clock.advance(3.0)
    Worker(mem_app, default_options(mem_app, name="celery@web-1")).run_until_idle()
    assert sub.close(5.0)
    families = {m.name: m for m in metrics.registry.collect()}
    for word in ("received", "started", "succeeded", "retried", "revoked", "rejected", "failed"):
        ours = {
            (s.labels["task"], s.labels["queue"], s.labels.get("exception")): s.value
            for s in families[f"conveyor_tasks_{word}"].samples
            if s.name.endswith("_total")
        }
        theirs = {
            (s.labels["name"], s.labels["queue_name"], s.labels.get("exception")): s.value
            for s in families[f"celery_task_{word}"].samples
            if s.name.endswith("_total") and s.labels.get("exception") != ""
        }
        assert ours == theirs, word
        hosts = {s.labels["hostname"] for s in families[f"celery_task_{word}"].samples}
        assert hosts == {"web-1"}
    assert sample(metrics, "conveyor_tasks_revoked_total", task="t.ok", queue=q) == 1
    labels = {"hostname": "web-1", "queue_name": q}
    assert sample(metrics, "celery_task_failed_total", name="t.bad", exception="KeyError", **labels)
    # The exporter's runtime histogram observes successes only (its default buckets)
    assert sample(metrics, "celery_task_runtime_count", name="t.ok", **labels) == 2
    assert sample(metrics, "celery_task_runtime_count", name="t.bad", **labels) is None
    assert sample(metrics, "celery_task_runtime_bucket", name="t.ok", le="10.0", **labels) == 2
    assert sample(metrics, "celery_task_queue_wait_time_count", name="t.again", **labels) == 2
    waits = "celery_task_queue_wait_time_bucket"  # each call waited the 3 s the clock moved
    assert sample(metrics, waits, name="t.ok", le="2.5", **labels) == 0
    assert sample(metrics, waits, name="t.ok", le="5.0", **labels) == 2
    assert sample(metrics, "celery_worker_tasks_active", hostname="web-1") == 3
    assert sample(metrics, "celery_worker_up", hostname="web-1") == 0  # not serving


def test_without_celery_names_none_is_served() -> None:
    metrics = WorkerMetrics("1", list, worker_name="w@h", tasks=["a"], queues=["q"])
    assert not [m for m in metrics.registry.collect() if m.name.startswith("celery_")]


def test_the_exporters_label_values() -> None:
    assert host_of("celery@web-1.example.com") == "web-1.example.com"
    assert host_of("solo") == "solo"
    assert exception_class("ValueError('x')") == "ValueError"
    assert exception_class("Outer.Inner('x(y)')") == "Inner"
    assert exception_class("") == "UnknownException"
    assert exception_class("<broken>") == "UnknownException"


def test_celery_worker_up_follows_serving() -> None:
    metrics = WorkerMetrics("1", list, worker_name="w@h", celery_names=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve("127.0.0.1", port)
    try:
        assert sample(metrics, "celery_worker_up", hostname="h") == 1
    finally:
        metrics.stop()
    assert sample(metrics, "celery_worker_up", hostname="h") == 0


def test_the_celery_names_setting_is_checked(mem_app: Conveyor) -> None:
    assert mem_app.conf.settings.metrics_celery_names is False
    mem_app.conf.metrics_celery_names = True
    assert mem_app.conf.settings.metrics_celery_names is True
    with pytest.raises(ConfigurationError, match="True or False"):
        mem_app.conf.metrics_celery_names = "yes"
