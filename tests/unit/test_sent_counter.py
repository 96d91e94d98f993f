"""SentCounter: the calls producers send, counted from the task-sent events in the broker's
event stream — from the moment it starts, each once, other and unreadable entries skipped, a
failing read retried from the same place."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from conveyor import Conveyor
from conveyor.events.types import TaskSent, TaskSucceeded, encode_json
from conveyor.observability.sent import SentCounter


def sent(task_id: str, name: str = "t.add", queue: str = "default") -> bytes:
    return encode_json(
        TaskSent(hostname="gen1@web-1", timestamp=1.0, uuid=task_id, name=name, queue=queue)
    )


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float:
    found = registry.get_sample_value(metric, labels)
    return 0.0 if found is None else found


@pytest.fixture
def app() -> Conveyor:
    return Conveyor("t", broker="memory://", backend="memory://", set_as_current=False)


def test_counts_sends_published_after_it_started_once_each(app: Conveyor) -> None:
    app.broker.publish_events([sent("before")])  # before the counter: not counted
    registry = CollectorRegistry()
    counter = SentCounter(app, registry, celery_names=True, interval=3600)
    counter.start()
    try:
        finished = TaskSucceeded(
            hostname="w", timestamp=1.0, uuid="x", name="t.add", queue="default", runtime=0.1
        )
        app.broker.publish_events(
            [sent("a"), sent("b"), encode_json(finished), b"not json", sent("c", "t.mul", "math")]
        )
        assert counter.poll() == 5
        assert counter.poll() == 0  # nothing new: nothing counted twice
    finally:
        counter.close()
    assert value(registry, "conveyor_tasks_sent_total", task="t.add", queue="default") == 2
    assert value(registry, "conveyor_tasks_sent_total", task="t.mul", queue="math") == 1
    celery = {"name": "t.add", "hostname": "web-1", "queue_name": "default"}
    assert value(registry, "celery_task_sent_total", **celery) == 2
    without = CollectorRegistry()
    SentCounter(app, without).close()
    assert without.get_sample_value("celery_task_sent_total", celery) is None


def test_a_failing_read_is_counted_and_retried_from_the_same_place(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    counter = SentCounter(app, registry, interval=3600).start()
    app.broker.publish_events([sent("a")])
    real = app.broker.read_events

    def down(after: str | None, limit: int) -> list[object]:
        raise ConnectionError("broker down")

    monkeypatch.setattr(app.broker, "read_events", down)
    counter._attempt()  # the thread's step: logged and counted, not raised
    assert counter.errors == 1
    monkeypatch.setattr(app.broker, "read_events", real)
    counter._attempt()
    counter.close()
    assert value(registry, "conveyor_tasks_sent_total", task="t.add", queue="default") == 1
