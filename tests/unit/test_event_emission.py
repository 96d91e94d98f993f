"""Events emitted where state changes: the producer (task-sent), the worker's slot groups,
settling, lease keeper and heartbeat (task-*, worker-*), and the scheduler (schedule-*). Workers
run in this process: step by step on a FakeClock, or for real (`Worker.run` on a thread)."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import defaultdict
from typing import Any

import msgspec

from conveyor import Conveyor
from conveyor.clock import FakeClock
from conveyor.events import (
    Event,
    EventBus,
    EventType,
    ScheduleFired,
    ScheduleSkipped,
    TaskEvent,
    TaskLeaseLost,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
)
from conveyor.events.bus import Subscription
from conveyor.scheduler.beat import Beat, BeatOptions
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.worker import Worker, default_options

from ..integration.helpers import wait_until
from .test_worker_services import start

T = EventType


class Collector:
    """An observer keeping every event it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def by_task(self) -> dict[str, list[TaskEvent]]:
        found: dict[str, list[TaskEvent]] = defaultdict(list)
        for event in self.events:
            if isinstance(event, TaskEvent):
                found[event.uuid].append(event)
        return found


def collect(app: Conveyor, types: list[EventType] | None = None) -> tuple[Collector, Subscription]:
    collector = Collector()
    return collector, app.events.subscribe(collector, types)


def kinds(events: list[TaskEvent]) -> list[str]:
    return [e.type.value for e in events]


def fields(event: Event, *names: str) -> dict[str, Any]:
    return {name: getattr(event, name) for name in names}


def test_wanted_follows_the_open_subscriptions() -> None:
    bus = EventBus()
    assert not bus.has_subscribers and not bus.wanted(T.TASK_SENT)
    failed = bus.subscribe(lambda e: None, [T.TASK_FAILED])
    assert bus.wanted(T.TASK_FAILED) and not bus.wanted(T.TASK_SENT)
    every = bus.subscribe(lambda e: None)
    assert all(bus.wanted(kind) for kind in EventType)
    every.close()
    assert bus.wanted(T.TASK_FAILED) and not bus.wanted(T.TASK_SENT)
    failed.close()
    assert not bus.has_subscribers and not bus.wanted(T.TASK_FAILED)


@dataclasses.dataclass
class Workload:
    """What `run_workload` sent (AsyncResults by role) and the events it gave."""

    calls: dict[str, Any]
    got: dict[str, list[TaskEvent]]
    events: list[Event]
    start_at: float

    def of(self, role: str) -> list[TaskEvent]:
        return self.got[self.calls[role].id]


def run_workload(app: Conveyor, clock: FakeClock) -> Workload:
    """Successes, a failure, a retry, a revocation, an expired call and a call of a task this
    worker does not know, on a worker driven step by step, with a subscriber to every event."""

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="t.boom")
    def boom() -> None:
        raise ValueError("boom")

    @app.task(name="t.flaky", bind=True, max_retries=3)
    def flaky(self: Any) -> int:
        if self.request.retries < 1:
            raise self.retry(exc=TimeoutError("slow"), countdown=10)
        return int(self.request.retries)

    collector, sub = collect(app)
    start_at = clock.now()
    calls: dict[str, Any] = {
        "ok1": add.delay(1, 2),
        "ok2": add.delay(3, 4),
        "bad": boom.delay(),
        "retried": flaky.delay(),
        "expired": add.apply_async((0, 0), expires=60),
    }
    other = Conveyor("other", broker="memory://", set_as_current=False)
    other._broker = app.broker  # a producer that knows a task this worker does not
    calls["stranger"] = other.task(name="not.here")(lambda: None).delay()
    worker = Worker(app, default_options(app, name="w@test", prefetch_multiplier=2))
    clock.advance(61)  # the expiring call is past its time before any worker takes it
    worker.run_until_idle()
    clock.advance(10)  # the retry is due
    worker.run_until_idle()
    calls["keep"], calls["victim"] = add.delay(5, 6), add.delay(7, 8)
    worker.groups[0].reserve(0.0)  # both reserved, none started
    app.control.revoke(calls["victim"].id)
    worker.keeper.renew_once()  # the renewal carries the revocation
    worker.run_until_idle()
    assert sub.close(5.0)
    return Workload(calls, collector.by_task(), collector.events, start_at)


RAN = ["task-sent", "task-received", "task-started"]


def test_a_known_workload_gives_each_call_its_event_sequence(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    w = run_workload(mem_app, fake_clock)
    for role in ("ok1", "ok2", "keep"):
        assert kinds(w.of(role)) == [*RAN, "task-succeeded"]
        assert w.calls[role].state is TaskState.SUCCESS
    assert kinds(w.of("bad")) == [*RAN, "task-failed"]
    assert kinds(w.of("retried")) == [*RAN, "task-retried", *RAN[1:], "task-succeeded"]
    assert kinds(w.of("expired")) == ["task-sent", "task-received", "task-revoked"]
    assert kinds(w.of("victim")) == ["task-sent", "task-received", "task-revoked"]
    assert kinds(w.of("stranger")) == ["task-rejected"]  # sent on the other app's bus
    assert set(w.got) == {call.id for call in w.calls.values()}
    assert not [e for e in w.events if not isinstance(e, TaskEvent)]  # no worker-* when stepped


def test_a_known_workload_gives_the_documented_fields(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    w = run_workload(mem_app, fake_clock)
    sent, received, started, succeeded = w.of("ok1")
    assert fields(sent, "name", "queue", "priority", "retries", "eta", "expires") == {
        "name": "t.add",
        "queue": "celery",
        "priority": 0,
        "retries": 0,
        "eta": None,
        "expires": None,
    }
    assert sent.hostname.startswith("gen") and sent.timestamp == w.start_at
    assert fields(received, "hostname", "queue", "attempt", "retries") == {
        "hostname": "w@test",
        "queue": "celery",
        "attempt": 1,
        "retries": 0,
    }
    assert fields(started, "attempt", "retries", "pid") == {
        "attempt": 1,
        "retries": 0,
        "pid": os.getpid(),
    }
    assert succeeded.runtime >= 0 and succeeded.retries == 0  # type: ignore[attr-defined]
    failed = w.of("bad")[-1]
    assert failed.exception == "ValueError('boom')"  # type: ignore[attr-defined]
    assert 'raise ValueError("boom")' in failed.traceback  # type: ignore[attr-defined]
    retry, again, _, finished = w.of("retried")[3:]
    assert fields(retry, "exception", "retries", "eta") == {
        "exception": "TimeoutError('slow')",
        "retries": 1,
        "eta": w.start_at + 61 + 10,
    }
    assert fields(again, "attempt", "retries") == {"attempt": 2, "retries": 1}
    assert fields(finished, "retries") == {"retries": 1}
    sent_expiring, _, expired = w.of("expired")
    assert fields(sent_expiring, "expires") == {"expires": w.start_at + 60}
    flags = ("expired", "terminated", "signum")
    assert fields(expired, *flags) == {"expired": True, "terminated": False, "signum": None}
    victim = w.of("victim")[-1]
    assert fields(victim, *flags) == {"expired": False, "terminated": False, "signum": None}
    rejected = w.of("stranger")[0]
    assert rejected.name == "not.here" and "not registered" in rejected.reason  # type: ignore[attr-defined]


def test_nothing_is_built_while_nobody_listens(mem_app: Conveyor) -> None:
    """Without a subscriber the worker emits nothing (the bus refuses nothing either); a
    subscriber for one type receives that type only."""

    @mem_app.task(name="t.one")
    def one() -> int:
        return 1

    one.delay()
    solo_worker(mem_app).run_until_idle()
    assert mem_app.events.refused == 0
    collector, sub = collect(mem_app, [T.TASK_SUCCEEDED])
    res = one.delay()
    solo_worker(mem_app).run_until_idle()
    assert sub.close(5.0)
    assert [(e.type, getattr(e, "uuid", None)) for e in collector.events] == [
        (T.TASK_SUCCEEDED, res.id)
    ]


def test_task_sent_once_per_call_the_broker_stored(mem_app: Conveyor) -> None:
    @mem_app.task(name="t.echo")
    def echo(x: int) -> int:
        return x

    collector, sub = collect(mem_app, [T.TASK_SENT])
    results = mem_app.send_many(echo, [(i,) for i in range(7)], chunk_size=3, priority=4)
    assert sub.close(5.0)
    assert [getattr(e, "uuid", None) for e in collector.events] == [r.id for r in results]
    assert {getattr(e, "priority", None) for e in collector.events} == {4}
    collector.events.clear()
    sub = mem_app.events.subscribe(collector, [T.TASK_SENT])
    echo.apply_async((0,), task_id=results[0].id)  # the broker knows it: stored once, no event
    fresh = echo.apply_async((0,))
    assert sub.close(5.0)
    assert [getattr(e, "uuid", None) for e in collector.events] == [fresh.id]


def test_a_lost_lease_is_reported_for_the_grant_that_was_lost(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    @mem_app.task(name="t.f")
    def f() -> None: ...

    res = f.delay()
    collector, sub = collect(mem_app, [T.TASK_LEASE_LOST])
    w = Worker(mem_app, default_options(mem_app, name="w@test", prefetch_multiplier=2))
    group = w.groups[0]
    group.reserve(0.0)
    fake_clock.advance(w.options.lease_for + 1)  # a pause past the lease
    group.reserve(0.0)  # the same message again, under a new token
    old, _ = (item.lease for item in group.backlog)
    assert w.keeper.renew_once() == [old]
    assert sub.close(5.0)
    (lost,) = collector.events
    assert isinstance(lost, TaskLeaseLost)
    assert fields(lost, "uuid", "name", "queue", "attempt", "hostname") == {
        "uuid": res.id,
        "name": "t.f",
        "queue": "celery",
        "attempt": 1,
        "hostname": "w@test",
    }


def test_a_worker_says_online_heartbeat_and_offline() -> None:
    """A real worker (threads pool, its keeper, writer and services) on this process's bus."""
    app = Conveyor("ev", broker="memory://", set_as_current=False)

    @app.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    collector, sub = collect(app)
    options = default_options(app, name="w@ev", pool="threads", concurrency=2, lease_for=0.6)
    worker = Worker(app, options)
    thread, failures = start(worker)
    results = [add.delay(i, i) for i in range(5)]
    wait_until(lambda: all(r.state is TaskState.SUCCESS for r in results), 30, "the workload")

    def beat_after_workload() -> bool:
        beats = [e for e in list(collector.events) if isinstance(e, WorkerHeartbeat)]
        return bool(beats) and beats[-1].succeeded == 5

    wait_until(beat_after_workload, 30, "a heartbeat counting the workload")
    worker.stop()
    thread.join(30)
    assert not thread.is_alive() and failures == []
    assert sub.close(5.0)
    workers = [e for e in collector.events if e.type.value.startswith("worker-")]
    online, offline = workers[0], workers[-1]
    assert isinstance(online, WorkerOnline) and isinstance(offline, WorkerOffline)
    assert fields(online, "hostname", "queues", "slots") == {
        "hostname": "w@ev",
        "queues": ("celery",),
        "slots": 2,
    }
    assert offline.processed == 5 and offline.hostname == "w@ev"
    beats = [e for e in workers[1:-1] if isinstance(e, WorkerHeartbeat)]
    assert beats and len(beats) == len(workers) - 2
    last = beats[-1]
    assert fields(last, "slots", "processed", "succeeded", "failed", "retried") == {
        "slots": 2,
        "processed": 5,
        "succeeded": 5,
        "failed": 0,
        "retried": 0,
    }
    assert last.freq == worker.heartbeat.interval and len(last.loadavg) == 3
    assert all(0 <= b.active <= 2 for b in beats)


def test_a_blocked_subscriber_slows_no_task_and_its_drops_are_counted() -> None:
    """An observer stuck on an Event with a buffer of 3: the workload completes while it is
    stuck, its overflow is counted in `dropped`, and a free observer gets everything."""
    app = Conveyor("ev", broker="memory://", set_as_current=False)

    @app.task(name="ev.add")
    def add(x: int, y: int) -> int:
        return x + y

    gate = threading.Event()
    stuck = app.events.subscribe(lambda e: gate.wait(), buffer_size=3)
    free, free_sub = collect(app)
    worker = Worker(app, default_options(app, name="w@ev", pool="threads", concurrency=2))
    thread, failures = start(worker)
    try:
        results = [add.delay(i, i) for i in range(20)]
        wait_until(lambda: all(r.state is TaskState.SUCCESS for r in results), 60, "the tasks")

        def task_events() -> int:
            return sum(isinstance(e, TaskEvent) for e in list(free.events))

        wait_until(lambda: task_events() >= 80, 30, "every task's events")
        assert not gate.is_set() and stuck.delivered == 0  # still stuck on its first event
        assert stuck.dropped > 0
    finally:
        worker.stop()
        gate.set()
        thread.join(30)
    assert failures == []
    stuck.close(5.0)
    assert free_sub.close(5.0)
    assert stuck.delivered + stuck.dropped == len(free.events)  # at most once: each one counted


def test_the_scheduler_emits_fired_and_skipped(fake_clock: FakeClock) -> None:
    app = Conveyor(
        "b", broker="memory://", backend="memory://", clock=fake_clock, set_as_current=False
    )

    @app.task(name="poll")
    def poll() -> None: ...

    app.conf.beat_schedule = {
        "every-second": {"task": "poll", "schedule": 1.0},
        "hourly": {"task": "poll", "schedule": 3600.0},
    }
    collector, sub = collect(app, [T.SCHEDULE_FIRED, T.SCHEDULE_SKIPPED])
    b = Beat(app, BeatOptions(lease=3.0, max_interval=5.0, grace=30.0, holder="beat@test"))
    b.start()
    now = fake_clock.now()
    for _ in range(3):  # three fires, one tick per second
        fake_clock.advance(1.0)
        b.tick()
    fake_clock.advance(2 * 3600 + 60.0)  # no scheduler ran: many fires missed
    b.tick()
    assert sub.close(5.0)

    fired = [e for e in collector.events if isinstance(e, ScheduleFired)]
    skipped = [e for e in collector.events if isinstance(e, ScheduleSkipped)]
    sent = [m.envelope.id for m in app.broker.list_messages("celery", limit=1000)]
    assert [e.uuid for e in fired] == sent and len(fired) == 4
    assert [e.scheduled_for for e in fired[:3]] == [now + 1, now + 2, now + 3]
    assert {e.entry for e in fired} == {"every-second"} and fired[0].hostname == "beat@test"
    assert fired[0].name == "poll"
    by_entry = {e.entry: e for e in skipped}
    assert set(by_entry) == {"every-second", "hourly"}
    late = by_entry["hourly"]  # its newest fire was an hour late: past the grace, skipped
    hour = fake_clock.now() // 3600 * 3600  # interval schedules fire on whole multiples
    assert late.scheduled_for == hour and "past beat_misfire_grace_time" in late.reason
    missed = by_entry["every-second"]  # the newest was sent, the older ones skipped
    assert missed.scheduled_for == fired[-1].scheduled_for and "newest was sent" in missed.reason


def test_events_survive_a_json_round_trip_from_a_real_run(mem_app: Conveyor) -> None:
    from conveyor.events import decode_json, encode_json

    @mem_app.task(name="t.boom")
    def boom() -> None:
        raise KeyError("k")

    collector, sub = collect(mem_app)
    boom.delay()
    solo_worker(mem_app).run_until_idle()
    assert sub.close(5.0)
    assert len(collector.events) == 4
    for event in collector.events:
        assert decode_json(encode_json(event)) == msgspec.structs.replace(event)


def test_reject_gives_task_rejected_and_ignore_ends_with_started(mem_app: Conveyor) -> None:
    from conveyor.errors import Ignore, Reject

    @mem_app.task(name="t.refuse")
    def refuse() -> None:
        raise Reject("bad input", requeue=False)

    @mem_app.task(name="t.skip")
    def skip() -> None:
        raise Ignore()

    collector, sub = collect(mem_app)
    refused, skipped = refuse.delay(), skip.delay()
    solo_worker(mem_app).run_until_idle()
    assert sub.close(5.0)
    got = collector.by_task()
    assert kinds(got[refused.id]) == [*RAN, "task-rejected"]
    assert kinds(got[skipped.id]) == RAN
    rejected = got[refused.id][-1]
    assert fields(rejected, "queue", "requeue") == {"queue": "celery", "requeue": False}
    assert rejected.reason.startswith("rejected by the task: Reject(")  # type: ignore[attr-defined]
