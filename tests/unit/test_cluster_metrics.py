"""ClusterCollector on a memory app with a FakeClock: queue series for every queue in use (0
when empty), workers alive and lost, schedule series from the stored progress, Celery's queue
length on request, and a store error reported as conveyor_cluster_up 0 without raising."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conveyor import Conveyor
from conveyor.brokers.base import Envelope, WorkerInfo
from conveyor.clock import FakeClock
from conveyor.errors import BackendUnavailable, ConfigurationError
from conveyor.observability.cluster import LOST_AFTER_BEATS, READ_BUDGET, ClusterCollector
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.worker.worker import Worker, default_options

LEASE = 30.0  # the default visibility_timeout: heartbeats every 10 s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> Conveyor:
    app = Conveyor("t", broker="memory://", backend="memory://", clock=clock, set_as_current=False)
    app.conf.task_queues = ["default", "declared", "routed"]
    app.conf.task_default_queue = "default"
    app.conf.task_routes = {"t.routed": {"queue": "routed"}}

    @app.task(name="t.routed")
    def routed() -> None:
        pass

    @app.task(name="t.plain")
    def plain() -> None:
        pass

    return app


def registry_of(collector: ClusterCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def names(registry: CollectorRegistry) -> set[str]:
    return {s.name for family in registry.collect() for s in family.samples}


def test_queue_series_cover_every_queue_in_use_and_equal_queue_stats(
    app: Conveyor, clock: FakeClock
) -> None:
    registry = registry_of(ClusterCollector(app))
    app.tasks["t.routed"].delay()
    app.tasks["t.plain"].apply_async(countdown=60)
    app.broker.enqueue([Envelope("x", "stray", b"{}")])  # a queue only the broker knows
    clock.advance(4)
    (d,) = app.broker.reserve(["stray"], 1, LEASE)
    assert app.broker.dead_letter(d.lease, "bad")
    stats = {s.queue: s for s in app.broker.queue_stats()}
    for queue in ("routed", "default", "stray"):
        for state in ("ready", "scheduled", "leased", "dead"):
            expected = getattr(stats[queue], state)
            got = value(registry, "conveyor_queue_messages", queue=queue, state=state)
            assert got == expected, (queue, state)
    assert value(registry, "conveyor_queue_messages", queue="routed", state="ready") == 1
    assert value(registry, "conveyor_queue_messages", queue="default", state="scheduled") == 1
    assert value(registry, "conveyor_queue_messages", queue="stray", state="dead") == 1
    for state in ("ready", "scheduled", "leased", "dead"):  # declared, never used: all 0
        assert value(registry, "conveyor_queue_messages", queue="declared", state=state) == 0
    age = "conveyor_queue_oldest_ready_age_seconds"
    assert value(registry, age, queue="routed") == 4.0
    assert value(registry, age, queue="declared") == 0.0
    assert value(registry, "conveyor_cluster_up") == 1
    assert "celery_queue_length" not in names(registry)  # only with metrics_celery_names


def test_queues_named_only_by_routes_tasks_or_beat_schedule_show_0(clock: FakeClock) -> None:
    app = Conveyor("t", broker="memory://", backend="memory://", clock=clock, set_as_current=False)
    app.conf.task_routes = {"t.*": {"queue": "by-route"}}
    app.conf.beat_schedule = {
        "e": {"task": "t.a", "schedule": 5.0, "options": {"queue": "by-beat"}}
    }

    @app.task(name="t.a")
    def a() -> None:
        pass

    @app.task(name="other", queue="by-task")
    def other() -> None:
        pass

    registry = registry_of(ClusterCollector(app))
    for queue in (app.conf.settings.task_default_queue, "by-route", "by-beat", "by-task"):
        assert value(registry, "conveyor_queue_messages", queue=queue, state="ready") == 0, queue
        assert value(registry, "conveyor_queue_oldest_ready_age_seconds", queue=queue) == 0


def test_celery_names_export_the_ready_count_as_celery_queue_length(app: Conveyor) -> None:
    registry = registry_of(ClusterCollector(app, celery_names=True))
    app.tasks["t.routed"].delay()
    app.tasks["t.routed"].delay()
    assert value(registry, "celery_queue_length", queue_name="routed") == 2
    assert value(registry, "celery_queue_length", queue_name="declared") == 0


def worker(name: str, heartbeat_at: float, stopped: bool = False) -> WorkerInfo:
    return WorkerInfo(
        name, ("default",), (), 1, heartbeat_at - 100, heartbeat_at,
        heartbeat_at if stopped else None,
    )  # fmt: skip


def test_a_worker_is_lost_after_three_heartbeat_intervals_without_one(
    app: Conveyor, clock: FakeClock
) -> None:
    collector = ClusterCollector(app)
    assert collector.lost_after == LOST_AFTER_BEATS * LEASE / 3 == 30.0
    registry = registry_of(collector)
    now = clock.now()
    app.broker.register_worker(worker("fresh", now))
    app.broker.register_worker(worker("edge", now - 30.0))  # exactly three beats: alive
    app.broker.register_worker(worker("silent", now - 30.5))
    app.broker.register_worker(worker("stopped", now - 1000, stopped=True))  # not counted
    assert value(registry, "conveyor_workers", state="alive") == 2
    assert value(registry, "conveyor_workers", state="lost") == 1
    clock.advance(1)
    assert value(registry, "conveyor_workers", state="alive") == 1
    assert value(registry, "conveyor_workers", state="lost") == 2


def test_schedule_series_come_from_the_stored_progress(app: Conveyor, clock: FakeClock) -> None:
    app.conf.beat_schedule = {"tick": {"task": "t.plain", "schedule": 10.0}}
    Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=60.0, holder="b")).start()
    registry = registry_of(ClusterCollector(app))
    assert value(registry, "conveyor_schedule_fires_total", entry="tick") == 0
    assert value(registry, "conveyor_schedule_skipped_total", entry="tick") == 0
    # never fired: no last-fire time rather than a false 1970
    assert value(registry, "conveyor_schedule_last_fire_timestamp_seconds", entry="tick") is None
    fired_at = clock.now() + 30
    assert app.schedule_store.advance("tick", None, fired_at, 1, 2)
    assert value(registry, "conveyor_schedule_fires_total", entry="tick") == 1
    assert value(registry, "conveyor_schedule_skipped_total", entry="tick") == 2
    last = value(registry, "conveyor_schedule_last_fire_timestamp_seconds", entry="tick")
    assert last == fired_at


def test_a_result_backend_without_a_schedule_store_omits_the_schedule_series(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_store(self: Conveyor) -> None:
        raise ConfigurationError("no schedule store for URL scheme 'x'")

    monkeypatch.setattr(Conveyor, "schedule_store", property(no_store))
    registry = registry_of(ClusterCollector(app))
    assert value(registry, "conveyor_cluster_up") == 1
    assert value(registry, "conveyor_queue_messages", queue="default", state="ready") == 0
    assert not {n for n in names(registry) if n.startswith("conveyor_schedule")}


def test_a_store_error_reports_up_0_and_no_half_picture(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = registry_of(ClusterCollector(app))
    app.tasks["t.routed"].delay()

    def down() -> None:
        raise BackendUnavailable("broker at memory:// is unreachable")

    monkeypatch.setattr(app.broker, "workers", down)
    with caplog.at_level(logging.WARNING, logger="conveyor.metrics"):
        assert value(registry, "conveyor_cluster_up") == 0
    assert names(registry) == {"conveyor_cluster_up", "conveyor_cluster_scrape_duration_seconds"}
    assert "cannot read the stores (BackendUnavailable" in caplog.text
    monkeypatch.undo()  # the store is back: the next scrape reads it
    assert value(registry, "conveyor_cluster_up") == 1
    assert value(registry, "conveyor_queue_messages", queue="routed", state="ready") == 1


def test_registering_reads_no_store(app: Conveyor, monkeypatch: pytest.MonkeyPatch) -> None:
    def untouchable() -> None:
        raise AssertionError("a store was read at registration")

    monkeypatch.setattr(app.broker, "queue_stats", untouchable)
    registry_of(ClusterCollector(app))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scraped_names(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("cluster", [False, True], ids=["worker-only", "cluster-metrics"])
def test_a_worker_serves_cluster_series_only_with_cluster_metrics(
    app: Conveyor, cluster: bool
) -> None:
    port = free_port()
    options = default_options(app, name="w@test", metrics_port=port, cluster_metrics=cluster)
    stop = Worker(app, options)._serve_metrics(port)
    try:
        served = scraped_names(port)
    finally:
        stop()
    assert "conveyor_worker_up" in served
    assert ("conveyor_queue_messages" in served) is cluster
    assert ("conveyor_cluster_up" in served) is cluster


def test_cluster_metrics_needs_a_metrics_port(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="give --metrics-port"):
        default_options(app, name="w@test", cluster_metrics=True)


def test_an_unreachable_server_fails_the_scrape_within_the_read_budget(clock: FakeClock) -> None:
    closed = free_port()  # nothing listens there: every connection is refused
    app = Conveyor("t", broker=f"redis://127.0.0.1:{closed}/0", set_as_current=False)
    collector = ClusterCollector(app)
    registry = registry_of(collector)
    started = time.monotonic()
    assert value(registry, "conveyor_cluster_up") == 0
    took = time.monotonic() - started
    # a worker's own guards would wait for ever; the collector's give up after READ_BUDGET
    assert READ_BUDGET - 1.0 <= took <= READ_BUDGET + 5.0
    collector.close()
