"""Publishing events to the broker's event stream (conveyor.events.stream): batching, order,
a broker that fails, flushing at close, and which events each kind of process publishes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest

from conveyor import Conveyor
from conveyor.brokers.base import STREAM_START
from conveyor.brokers.memory import MemoryBroker
from conveyor.errors import ConfigurationError
from conveyor.events import (
    EventBus,
    EventType,
    ScheduleFired,
    TaskSent,
    WorkerOnline,
    decode_json,
)
from conveyor.events.stream import (
    SCHEDULE_EVENTS,
    TASK_EVENTS,
    WORKER_EVENTS,
    EventPublisher,
    publish,
)
from conveyor.scheduler.beat import Beat, BeatOptions, run_in_thread
from conveyor.worker.worker import default_options

from ..integration.helpers import wait_until


def online(n: int) -> WorkerOnline:
    return WorkerOnline(hostname=f"w{n}", timestamp=float(n), pid=n, queues=("q",), slots=1)


def stream(broker: MemoryBroker) -> list[str]:
    return [decode_json(e.body).hostname for e in broker.read_events(STREAM_START, 10_000)]


class FailingBroker(MemoryBroker):
    """Refuses every publish, as a broker in an outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def publish_events(self, bodies: Sequence[bytes]) -> None:
        self.calls += 1
        raise ConnectionError("broker down")


class GatedBroker(MemoryBroker):
    """Holds its first publish until released, so later events queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[int] = []

    def publish_events(self, bodies: Sequence[bytes]) -> None:
        self.entered.set()
        assert self.gate.wait(5.0)
        self.batches.append(len(bodies))
        super().publish_events(bodies)


def test_events_reach_the_stream_in_order_and_close_flushes_them() -> None:
    broker, bus = MemoryBroker(), EventBus()
    publisher = publish(bus, broker, WORKER_EVENTS)
    for n in range(50):
        bus.emit(online(n))
    assert publisher.close(5.0)
    assert stream(broker) == [f"w{n}" for n in range(50)]
    assert (publisher.published, publisher.dropped, publisher.failed_batches) == (50, 0, 0)


def test_what_queues_while_the_broker_is_busy_goes_in_one_batch() -> None:
    broker, bus = GatedBroker(), EventBus()
    publisher = publish(bus, broker, WORKER_EVENTS)
    bus.emit(online(0))
    assert broker.entered.wait(5.0)  # the first event's batch is at the broker
    for n in range(1, 30):
        bus.emit(online(n))
    wait_until(lambda: publisher.pending == 29, 5.0, "29 events queued")
    broker.gate.set()
    assert publisher.close(5.0)
    assert broker.batches == [1, 29]
    assert stream(broker) == [f"w{n}" for n in range(30)]


def test_a_broker_error_drops_the_batch_counts_it_and_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, bus = FailingBroker(), EventBus()
    publisher = EventPublisher(broker, error_log_every=1000).subscribe(bus, WORKER_EVENTS)
    with caplog.at_level(logging.ERROR, "conveyor.events.stream"):
        for n in range(5):
            bus.emit(online(n))  # emit never raises, whatever the broker does
        publisher.close(5.0)
    assert broker.calls >= 1
    assert publisher.dropped == 5 and publisher.published == 0
    assert publisher.failed_batches == broker.calls
    logged = [r for r in caplog.records if "could not publish" in r.getMessage()]
    assert len(logged) == 1  # the first failed batch only, not one line per event
    assert "ConnectionError: broker down" in (logged[0].exc_text or "")


def test_events_past_max_pending_are_dropped_and_counted() -> None:
    broker, bus = GatedBroker(), EventBus()
    publisher = EventPublisher(broker, max_pending=3).subscribe(bus, WORKER_EVENTS)
    bus.emit(online(0))
    assert broker.entered.wait(5.0)
    for n in range(1, 20):
        bus.emit(online(n))
    wait_until(lambda: publisher.pending + publisher.dropped == 19, 5.0, "19 events observed")
    broker.gate.set()
    publisher.close(5.0)
    assert (publisher.published, publisher.dropped) == (4, 16)
    assert stream(broker) == ["w0", "w1", "w2", "w3"]


def test_only_the_subscribed_types_are_published() -> None:
    broker, bus = MemoryBroker(), EventBus()
    publisher = publish(bus, broker, WORKER_EVENTS)
    sent = TaskSent(hostname="gen1@h", timestamp=1.0, uuid="u", name="t", queue="q")
    bus.emit(sent)
    bus.emit(online(1))
    publisher.close(5.0)
    assert stream(broker) == ["w1"]
    assert not bus.wanted(EventType.TASK_SENT)


def test_the_event_groups_split_every_type_once() -> None:
    groups = [WORKER_EVENTS, TASK_EVENTS, SCHEDULE_EVENTS, frozenset({EventType.TASK_SENT})]
    assert sorted(t.value for g in groups for t in g) == sorted(t.value for t in EventType)


def test_task_send_sent_event_publishes_task_sent_from_the_producer() -> None:
    app = Conveyor("ev", broker="memory://", set_as_current=False)
    app.conf.update(task_send_sent_event=True)

    @app.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(1, 2)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    app.close()  # flushes the queued task-sent
    (event,) = [decode_json(e.body) for e in broker.read_events(STREAM_START, 10)]
    assert isinstance(event, TaskSent) and event.uuid == result.id and event.name == "ev.add"


def test_without_task_send_sent_event_the_producer_publishes_nothing() -> None:
    app = Conveyor("ev", broker="memory://", set_as_current=False)

    @app.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(1, 2)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)
    app.close()
    assert broker.read_events(STREAM_START, 10) == []


def test_a_running_scheduler_publishes_its_fires() -> None:
    app = Conveyor("b", broker="memory://", backend="memory://", set_as_current=False)

    @app.task(name="poll")
    def poll() -> None: ...

    app.conf.beat_schedule = {"every-second": {"task": "poll", "schedule": 1.0}}
    scheduler = Beat(app, BeatOptions(lease=3.0, max_interval=0.2, grace=30.0, holder="b@t"))
    scheduler.start()
    thread, stop = run_in_thread(scheduler)
    broker = app.broker
    assert isinstance(broker, MemoryBroker)

    def fired() -> list[ScheduleFired]:
        found = [decode_json(e.body) for e in broker.read_events(STREAM_START, 100)]
        return [e for e in found if isinstance(e, ScheduleFired)]

    try:
        wait_until(fired, 10, "a schedule-fired event in the stream")
    finally:
        stop.set()
        thread.join(10)
    first = fired()[0]
    assert first.entry == "every-second" and first.hostname == "b@t"
    assert first.uuid in {m.envelope.id for m in broker.list_messages("celery")}


@pytest.mark.parametrize("name", ["worker_send_task_events", "task_send_sent_event"])
def test_the_event_settings_are_built_and_take_only_booleans(name: str) -> None:
    app = Conveyor("ev", broker="memory://", set_as_current=False)
    app.conf.update({name: True})
    assert getattr(app.conf.settings, name) is True
    with pytest.raises(ConfigurationError, match=f"{name} must be True or False"):
        app.conf.update({name: "yes"})


def test_worker_send_task_events_turns_on_task_events_for_workers_built_in_code() -> None:
    app = Conveyor("ev", broker="memory://", set_as_current=False)
    assert not default_options(app).task_events
    app.conf.update(worker_send_task_events=True)
    assert default_options(app).task_events
