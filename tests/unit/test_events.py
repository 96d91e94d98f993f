"""The event records, their JSON form, and the in-process bus's delivery contract."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import msgspec
import pytest

from conveyor import Conveyor
from conveyor.events import (
    EVENT_CLASSES,
    Event,
    EventBus,
    EventDecodeError,
    EventType,
    ScheduleFired,
    ScheduleSkipped,
    TaskEvent,
    TaskFailed,
    TaskLeaseLost,
    TaskReceived,
    TaskRejected,
    TaskRetried,
    TaskRevoked,
    TaskSent,
    TaskStarted,
    TaskSucceeded,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
    decode_json,
    encode_json,
    from_dict,
    to_dict,
)

HOST: dict[str, Any] = {"hostname": "w1@box", "timestamp": 1_700_000_000.25}
CALL: dict[str, Any] = {**HOST, "uuid": "c0ffee", "name": "proj.add"}

SAMPLES: list[Event] = [
    TaskSent(**CALL, queue="default", priority=5, eta=1.5, expires=9.0, parent_id="p", root_id="r"),
    TaskReceived(**CALL, queue="default", attempt=2, retries=1, eta=None, root_id="r"),
    TaskStarted(**CALL, queue="default", attempt=1, pid=4242),
    TaskSucceeded(**CALL, queue="default", runtime=0.125),
    TaskFailed(**CALL, queue="q", runtime=2.0, exception="KeyError('x')", traceback="Tb…\n"),
    TaskRetried(**CALL, queue="q", exception="OSError()", retries=3, eta=1_700_000_060.0),
    TaskRevoked(**CALL, terminated=True, expired=False, signum=15),
    TaskRejected(**CALL, queue="q", reason="delivered 5 times (max_deliveries)"),
    TaskLeaseLost(**CALL, queue="q", attempt=1),
    WorkerOnline(**HOST, pid=7, queues=("high", "default"), slots=8, sw_ver="1.0"),
    WorkerHeartbeat(
        **HOST,
        pid=7,
        freq=2.0,
        slots=8,
        active=3,
        processed=100,
        succeeded=90,
        failed=6,
        retried=4,
        loadavg=(0.5, 0.25, 0.125),
    ),
    WorkerOffline(**HOST, pid=7, processed=100),
    ScheduleFired(**HOST, entry="nightly", name="proj.report", uuid="e:1", scheduled_for=60.0),
    ScheduleSkipped(**HOST, entry="nightly", name="proj.report", scheduled_for=60.0, reason="x"),
]

# Fields of Celery's event reference that conveyor's events carry under the same names
# (Celery's `args`, `kwargs` and `result` are left out on purpose: see conveyor.events.types).
CELERY_FIELDS: dict[EventType, set[str]] = {
    EventType.TASK_SENT: {"uuid", "name", "retries", "eta", "expires", "queue", "root_id"},
    EventType.TASK_RECEIVED: {"uuid", "name", "retries", "eta", "hostname", "timestamp"},
    EventType.TASK_STARTED: {"uuid", "hostname", "timestamp", "pid"},
    EventType.TASK_SUCCEEDED: {"uuid", "runtime", "hostname", "timestamp"},
    EventType.TASK_FAILED: {"uuid", "exception", "traceback", "hostname", "timestamp"},
    EventType.TASK_RETRIED: {"uuid", "exception", "traceback", "hostname", "timestamp"},
    EventType.TASK_REVOKED: {"uuid", "terminated", "signum", "expired"},
    EventType.TASK_REJECTED: {"uuid"},
    EventType.WORKER_ONLINE: {"hostname", "timestamp", "sw_ident", "sw_ver"},
    EventType.WORKER_HEARTBEAT: {"hostname", "timestamp", "freq", "active", "processed", "loadavg"},
    EventType.WORKER_OFFLINE: {"hostname", "timestamp"},
}


def field_names(cls: type[Event]) -> set[str]:
    return {f.name for f in msgspec.structs.fields(cls)}


def test_every_event_type_has_one_class_and_a_sample() -> None:
    assert set(EVENT_CLASSES) == set(EventType)
    assert {type(e) for e in SAMPLES} == set(EVENT_CLASSES.values())
    assert all(EVENT_CLASSES[cls.type] is cls for cls in EVENT_CLASSES.values())


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type.value)
def test_every_event_round_trips_through_json(event: Event) -> None:
    data = json.loads(json.dumps(to_dict(event)))
    assert data["type"] == event.type.value
    assert next(iter(data)) == "type"
    assert from_dict(data) == event
    assert decode_json(encode_json(event)) == event
    assert decode_json(encode_json(event).decode()) == event


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type.value)
def test_events_are_frozen_and_slotted(event: Event) -> None:
    assert not hasattr(event, "__dict__")
    with pytest.raises(AttributeError, match="immutable"):
        event.hostname = "other"  # type: ignore[misc]


def test_task_event_field_names_follow_celery() -> None:
    for kind, names in CELERY_FIELDS.items():
        missing = names - field_names(EVENT_CLASSES[kind])
        assert not missing, f"{kind.value} lacks Celery's fields {missing}"
    for kind, cls in EVENT_CLASSES.items():
        if kind.value.startswith("task-"):
            assert {"uuid", "name", "hostname", "timestamp"} <= field_names(cls)
            assert not {"id", "task_id", "task_name", "host", "time"} & field_names(cls)
    assert [t.value for t in EventType][:6] == [
        "task-sent",
        "task-received",
        "task-started",
        "task-succeeded",
        "task-failed",
        "task-retried",
    ]


def test_decoding_names_what_is_wrong() -> None:
    good = to_dict(SAMPLES[3])
    with pytest.raises(EventDecodeError, match="unknown event type 'task-exploded'"):
        from_dict({**good, "type": "task-exploded"})
    with pytest.raises(EventDecodeError, match="unknown event type None"):
        from_dict({k: v for k, v in good.items() if k != "type"})
    with pytest.raises(EventDecodeError, match="runtime"):
        from_dict({**good, "runtime": "fast"})
    with pytest.raises(EventDecodeError, match="uuid"):
        from_dict({k: v for k, v in good.items() if k != "uuid"})
    with pytest.raises(EventDecodeError, match="JSON object"):
        decode_json(b"[1, 2]")
    with pytest.raises(EventDecodeError, match="not valid JSON"):
        decode_json(b"{")
    # A field a newer conveyor added is ignored, so mixed versions share one stream.
    assert from_dict({**good, "added_later": 1}) == SAMPLES[3]


def sent(uuid: str) -> TaskSent:
    return TaskSent(**{**CALL, "uuid": uuid}, queue="default")


def uuid_of(event: Event) -> str:
    assert isinstance(event, TaskEvent)
    return event.uuid


def test_emit_from_many_threads_keeps_order_per_subscriber() -> None:
    bus = EventBus(buffer_size=20_000)
    received: tuple[list[Event], list[Event]] = ([], [])
    subs = [bus.subscribe(out.append) for out in received]
    threads, per_thread = 8, 2_000

    def produce(t: int) -> None:
        for i in range(per_thread):
            bus.emit(sent(f"{t}:{i}"))

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert bus.close(timeout=60)
    seen = [[uuid_of(e) for e in out] for out in received]
    assert seen[0] == seen[1]  # one order, the same for every subscriber
    assert len(seen[0]) == threads * per_thread
    for t in range(threads):
        mine = [int(u.split(":")[1]) for u in seen[0] if u.startswith(f"{t}:")]
        assert mine == list(range(per_thread))
    assert [(s.delivered, s.dropped, s.errors) for s in subs] == [(16_000, 0, 0)] * 2


def test_raising_observer_is_counted_and_logged_and_others_get_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(error_log_every=10)
    tried: list[str] = []
    good: list[str] = []

    def flaky(event: Event) -> None:
        tried.append(uuid_of(event))
        if len(tried) % 3 != 1:
            raise RuntimeError("observer bug")

    bad_sub = bus.subscribe(flaky)
    good_sub = bus.subscribe(lambda e: good.append(uuid_of(e)))
    uuids = [str(i) for i in range(30)]
    with caplog.at_level(logging.ERROR, logger="conveyor.events"):
        for u in uuids:
            bus.emit(sent(u))
        assert bus.close(timeout=60)
    assert tried == uuids and good == uuids  # the raising observer still got every event
    assert (bad_sub.errors, bad_sub.delivered, bad_sub.dropped) == (20, 10, 0)
    assert (good_sub.errors, good_sub.delivered) == (0, 30)
    logged = [r for r in caplog.records if r.name == "conveyor.events"]
    assert len(logged) == 3  # errors 1, 10 and 20: once per 10, not once per event
    assert all("test_events" in r.getMessage() and "flaky" in r.getMessage() for r in logged)
    assert all(r.exc_info is not None for r in logged)


def test_blocked_observer_slows_no_emit_and_its_drops_are_counted() -> None:
    bus = EventBus()
    entered, gate = threading.Event(), threading.Event()
    slow_seen: list[str] = []
    fast_seen: list[str] = []

    def slow(event: Event) -> None:
        slow_seen.append(uuid_of(event))
        entered.set()
        gate.wait()

    slow_sub = bus.subscribe(slow, buffer_size=100)
    fast_sub = bus.subscribe(lambda e: fast_seen.append(uuid_of(e)), buffer_size=30_000)
    try:
        bus.emit(sent("first"))
        assert entered.wait(60)  # the slow observer now holds its thread
        for i in range(20_000):
            bus.emit(sent(str(i)))  # returns although the slow observer is blocked
        assert slow_sub.dropped == 20_000 - 100
    finally:
        gate.set()
    assert bus.close(timeout=60)
    assert slow_seen == ["first", *map(str, range(100))]
    assert fast_seen == ["first", *map(str, range(20_000))]
    assert (fast_sub.delivered, fast_sub.dropped) == (20_001, 0)
    assert (slow_sub.delivered, slow_sub.dropped) == (101, 19_900)


def test_a_burst_is_delivered_in_few_wakeups_and_a_lone_event_still_arrives() -> None:
    bus = EventBus()
    seen: list[str] = []
    arrived = threading.Event()

    def observer(event: Event) -> None:
        seen.append(uuid_of(event))
        if len(seen) in (1_000, 1_001):
            arrived.set()

    sub = bus.subscribe(observer)
    for i in range(1_000):  # far faster than one thread switch per event
        bus.emit(sent(str(i)))
    assert arrived.wait(60)
    # One wake-up per event would be 1,000; lingering batches what arrives meanwhile.
    assert sub.wakeups < 100, sub.wakeups
    arrived.clear()
    bus.emit(sent("lone"))  # nothing follows it: the linger ends and it is delivered anyway
    assert arrived.wait(60)
    assert seen == [*map(str, range(1_000)), "lone"]
    assert sub.close(timeout=60)


def test_close_drains_buffered_events() -> None:
    bus = EventBus()
    entered, gate = threading.Event(), threading.Event()
    seen: list[str] = []

    def gated(event: Event) -> None:
        entered.set()
        gate.wait()
        seen.append(uuid_of(event))

    sub = bus.subscribe(gated)
    bus.emit(sent("0"))
    assert entered.wait(60)
    for i in range(1, 50):
        bus.emit(sent(str(i)))
    gate.set()
    assert sub.close(timeout=60)
    assert seen == [str(i) for i in range(50)]
    assert (sub.delivered, sub.dropped, sub.closed) == (50, 0, True)
    bus.emit(sent("after"))  # a closed subscription receives nothing more
    assert sub.delivered == 50 and bus.subscriptions == ()


def test_close_past_its_deadline_counts_what_is_left_as_dropped() -> None:
    bus = EventBus()
    entered, gate = threading.Event(), threading.Event()

    def stuck(event: Event) -> None:
        entered.set()
        gate.wait()

    sub = bus.subscribe(stuck)
    try:
        bus.emit(sent("stuck"))
        assert entered.wait(60)
        for i in range(5):
            bus.emit(sent(str(i)))
        assert sub.close(timeout=0) is False
        assert (sub.dropped, sub.delivered) == (5, 0)
    finally:
        gate.set()


def test_close_is_false_while_the_observer_still_holds_the_last_event() -> None:
    bus = EventBus()
    entered, gate = threading.Event(), threading.Event()

    def stuck(event: Event) -> None:
        entered.set()
        gate.wait()

    sub = bus.subscribe(stuck)
    try:
        bus.emit(sent("only"))
        assert entered.wait(60)
        assert sub.close(timeout=0) is False  # nothing buffered, but not delivered either
        assert (sub.dropped, sub.delivered) == (0, 0)
    finally:
        gate.set()


def test_subscribe_by_type_and_bad_settings() -> None:
    bus = EventBus()
    got: list[EventType] = []
    sub = bus.subscribe(
        lambda e: got.append(e.type), types=["task-failed", EventType.WORKER_OFFLINE]
    )
    for event in SAMPLES:
        bus.emit(event)
    assert sub.close(timeout=60)
    assert got == [EventType.TASK_FAILED, EventType.WORKER_OFFLINE]
    with pytest.raises(ValueError, match="unknown event type 'task-done'"):
        bus.subscribe(print, types=["task-done"])
    with pytest.raises(ValueError, match="buffer_size must be"):
        bus.subscribe(print, buffer_size=0)
    with pytest.raises(ValueError, match="error_log_every must be"):
        EventBus(error_log_every=0)
    assert bus.subscriptions == ()


def test_app_events_is_one_bus_per_app() -> None:
    first, second = (
        Conveyor("first", set_as_current=False),
        Conveyor("second", set_as_current=False),
    )
    assert first.events is first.events
    assert first.events is not second.events
    got: list[Event] = []
    sub = first.events.subscribe(got.append)
    first.events.emit(SAMPLES[0])
    second.events.emit(SAMPLES[1])
    assert sub.close(timeout=60)
    assert got == [SAMPLES[0]]


def test_emit_never_raises_and_an_observer_may_emit(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    got: list[str] = []
    ponged = threading.Event()

    def echo(event: Event) -> None:
        got.append(uuid_of(event))
        if uuid_of(event) == "ping":
            bus.emit(sent("pong"))  # from the observer's own thread: no deadlock
        else:
            ponged.set()

    def exits(event: Event) -> None:
        raise SystemExit(3)

    sub = bus.subscribe(echo)
    quitter = bus.subscribe(exits, types=["task-sent"])
    with caplog.at_level(logging.ERROR, logger="conveyor.events"):
        bus.emit(Event(hostname="h", timestamp=0.0))  # no `type`: logged and dropped
        bus.emit(sent("ping"))
        assert ponged.wait(60)
        assert sub.close(timeout=60)
        assert quitter.close(timeout=60)
    assert got == ["ping", "pong"]
    assert (quitter.errors, quitter.dropped) == (2, 0)  # its thread survived SystemExit
    messages = [r.getMessage() for r in caplog.records]
    assert bus.refused == 1
    assert any("not an event of conveyor.events" in m for m in messages)
    assert any("exits raised on a task-sent event" in m for m in messages)


def test_a_batch_observer_gets_lists_in_order_and_a_raising_batch_counts_one_error() -> None:
    bus = EventBus()
    batches: list[list[str]] = []
    done = threading.Event()

    def observer(events: list[Event]) -> None:
        if uuid_of(events[0]) == "boom":
            raise RuntimeError("boom")
        batches.append([uuid_of(e) for e in events])
        if batches and batches[-1][-1] == "last":
            done.set()

    sub = bus.subscribe_batches(observer, types=["task-sent"])
    bus.emit(sent("boom"))
    assert sub.close(timeout=60) and (sub.errors, sub.delivered) == (1, 0)
    sub = bus.subscribe_batches(observer)
    for i in range(500):
        bus.emit(sent(str(i)))
    bus.emit(sent("last"))
    assert done.wait(60)
    assert [u for batch in batches for u in batch] == [*map(str, range(500)), "last"]
    assert len(batches) < 100  # batched, not one call per event
    assert sub.close(timeout=60) and sub.delivered == 501
