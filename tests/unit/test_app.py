from __future__ import annotations

import datetime
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor, NotRegistered, shared_task
from conveyor.brokers.base import Envelope, WorkerInfo
from conveyor.clock import FakeClock
from conveyor.errors import ConfigurationError, EncodeError, MessageTooLarge
from conveyor.message import decode_message
from conveyor.states import TaskState


def only_envelope(app: Conveyor):  # type: ignore[no-untyped-def]
    (d,) = app.broker.reserve([s.queue for s in app.broker.queue_stats()], 10, 30)
    return d


def test_task_names_default_to_module_and_function(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.name == f"{__name__}.add"
    assert add(2, 3) == 5  # a direct call runs inline
    assert mem_app.broker.queue_stats() == []


def test_two_functions_with_one_name_is_an_error(mem_app: Conveyor) -> None:
    def first() -> int:
        return 1

    def second() -> int:
        return 2

    mem_app.task(name="same")(first)
    with pytest.raises(ConfigurationError, match="two different functions"):
        mem_app.task(name="same")(second)


def test_apply_async_sets_queue_priority_delay_and_expiry(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    @mem_app.task(queue="emails", priority=2)
    def send(to: str) -> None: ...

    res = send.apply_async(("a@b",), countdown=30, priority=7, expires=60, task_id="fixed")
    assert res.id == "fixed" and res.state is TaskState.PENDING
    (stats,) = mem_app.broker.queue_stats()
    assert (stats.queue, stats.scheduled) == ("emails", 1)
    fake_clock.advance(30)
    d = only_envelope(mem_app)
    assert d.envelope.priority == 7
    msg = decode_message(d.envelope.body)
    assert msg.args == ("a@b",) and msg.expires == pytest.approx(fake_clock.now() - 30 + 60)


def test_defaults_come_from_settings(mem_app: Conveyor) -> None:
    mem_app.conf.update(task_default_queue="jobs", task_default_priority=4, task_max_deliveries=2)

    @mem_app.task
    def job() -> None: ...

    job.delay()
    d = only_envelope(mem_app)
    assert (d.envelope.queue, d.envelope.priority, d.envelope.max_deliveries) == ("jobs", 4, 2)


def test_naive_eta_is_read_in_the_app_timezone(mem_app: Conveyor, fake_clock: FakeClock) -> None:
    mem_app.conf.timezone = "America/Santiago"

    @mem_app.task
    def t() -> None: ...

    tz = ZoneInfo("America/Santiago")
    now_local = datetime.datetime.fromtimestamp(fake_clock.now(), tz).replace(tzinfo=None)
    t.apply_async(eta=now_local + datetime.timedelta(seconds=90))
    (stats,) = mem_app.broker.queue_stats()
    assert stats.scheduled == 1
    fake_clock.advance(89)
    assert mem_app.broker.reserve(["celery"], 1, 30) == []
    fake_clock.advance(1)
    assert len(mem_app.broker.reserve(["celery"], 1, 30)) == 1


def test_bad_arguments_fail_at_the_call_site_and_enqueue_nothing(mem_app: Conveyor) -> None:
    @mem_app.task
    def t(x: object) -> None: ...

    with pytest.raises(EncodeError, match=r"args\[0\]"):
        t.delay(datetime.date.today())
    mem_app.conf.task_message_max_size = 1000
    with pytest.raises(MessageTooLarge):
        t.delay("x" * 2000)
    assert mem_app.broker.queue_stats() == []


def test_send_task_by_unknown_name_names_close_matches(mem_app: Conveyor) -> None:
    mem_app.task(name="sii.sync_documents")(lambda: None)
    with pytest.raises(NotRegistered, match=r"'sii\.sync_document'.*'sii\.sync_documents'"):
        mem_app.send_task("sii.sync_document")
    assert mem_app.broker.queue_stats() == []


def test_send_task_accepts_names_that_workers_published(mem_app: Conveyor) -> None:
    mem_app.broker.register_worker(WorkerInfo("w@h", ("celery",), ("remote.only",), 1, 0.0, 0.0))
    res = mem_app.send_task("remote.only", [1], {"k": 2})
    msg = decode_message(only_envelope(mem_app).envelope.body)
    assert (msg.id, msg.task, msg.args, msg.kwargs) == (res.id, "remote.only", (1,), {"k": 2})


def test_a_name_published_since_the_cached_list_was_read_is_found(
    mem_app: Conveyor, fake_clock: FakeClock
) -> None:
    """A rolling deploy: a worker publishes a new task just after a producer (or a worker
    sending a chain's next step) read the published names; the cache is not trusted for a miss."""
    mem_app.broker.register_worker(WorkerInfo("old@h", ("celery",), ("old.task",), 1, 0.0, 0.0))
    mem_app.send_task("old.task")  # reads and caches the published names
    mem_app.broker.register_worker(WorkerInfo("new@h", ("celery",), ("new.task",), 2, 0.0, 0.0))
    fake_clock.advance(1.0)  # well within the cache's lifetime
    res = mem_app.send_task("new.task")
    assert decode_message(mem_app.broker.get_message(res.id).envelope.body).task == "new.task"  # type: ignore[union-attr]
    with pytest.raises(
        NotRegistered, match=r"unknown task 'newer\.task'.*did you mean 'new\.task'"
    ):
        mem_app.send_task("newer.task")
    assert mem_app.published_task_names() == frozenset({"old.task", "new.task"})


def test_sending_the_same_task_id_twice_enqueues_once(mem_app: Conveyor) -> None:
    @mem_app.task
    def t() -> None: ...

    t.apply_async(task_id="once")
    t.apply_async(task_id="once")
    (stats,) = mem_app.broker.queue_stats()
    assert stats.ready == 1


def test_shared_task_binds_to_the_current_app(fake_clock: FakeClock) -> None:
    @shared_task(name="shared.double")
    def double(x: int) -> int:
        return 2 * x

    app = Conveyor("other", broker="memory://", clock=fake_clock)
    try:
        assert "shared.double" in app.tasks
        assert double(4) == 8
        res = double.delay(3)
        assert res.app is app
        assert len(app.broker.reserve(["celery"], 1, 30)) == 1
    finally:
        app.close()


def test_eager_mode_runs_inline_with_retries(fake_clock: FakeClock) -> None:
    app = Conveyor("eager", clock=fake_clock, set_as_current=False)
    app.conf.task_always_eager = True
    calls: list[int] = []

    @app.task(bind=True, max_retries=3)
    def flaky(self) -> int:  # type: ignore[no-untyped-def]
        calls.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=60)
        return 42

    assert app.urls == ("memory://", "memory://")
    assert flaky.delay().get(timeout=1) == 42
    assert calls == [0, 1, 2]

    @app.task
    def bad() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        bad.delay().get(timeout=1)
    app.conf.task_eager_propagates = True
    with pytest.raises(ValueError, match="nope"):
        bad.delay()


def test_send_many_sends_every_call_in_chunks_with_routing() -> None:
    app = Conveyor("many", broker="memory://", set_as_current=False)
    app.conf.task_routes = {"many.*": {"queue": "bulk"}}

    @app.task(name="many.add")
    def add(x: int, y: int) -> int:
        return x + y

    sent: list[int] = []
    enqueue = app.broker.enqueue

    def counting(envelopes: Sequence[Envelope]) -> list[bool]:
        sent.append(len(envelopes))
        return enqueue(envelopes)

    app.broker.enqueue = counting  # type: ignore[method-assign]
    results = app.send_many(add, [(i, 1) for i in range(2500)], chunk_size=1000)
    assert sent == [1000, 1000, 500]
    assert len({r.id for r in results}) == 2500
    (stats,) = app.broker.queue_stats()
    assert (stats.queue, stats.ready) == ("bulk", 2500)
    with pytest.raises(NotRegistered):
        app.send_many("many.nope", [()])
