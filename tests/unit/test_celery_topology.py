"""Celery's queue topology settings: the default queue `celery`, task_create_missing_queues,
the default exchange, exchange type and routing key, routes that give a routing key instead of
a queue, and task_queue_max_priority (priorities 0–255 mapped onto conveyor's 0–9)."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor import ConfigurationError, Conveyor, Exchange, Queue
from conveyor.bindings import topic_matches
from conveyor.priorities import to_band


def _noop() -> None:
    return None


def make_app(**settings: Any) -> Conveyor:
    app = Conveyor("topology", broker="memory://", backend="memory://", set_as_current=False)
    app.conf.update(settings)
    for name in ("feed.tasks.import_feed", "media.tasks.resize", "video.tasks.encode", "misc.x"):
        app.task(name=name)(_noop)
    return app


def sent_to(app: Conveyor, name: str, **call: Any) -> tuple[str, int]:
    """(queue, stored priority) of one call of `name`."""
    result = app.tasks[name].apply_async(**call)
    for stats in app.broker.queue_stats():
        for message in app.broker.list_messages(stats.queue):
            if message.envelope.id == result.id:
                return message.envelope.queue, message.envelope.priority
    raise AssertionError(f"{result.id} was not stored")


# -- the default queue ---------------------------------------------------------------------
def test_unrouted_calls_go_to_celerys_default_queue_celery() -> None:
    app = make_app()
    assert app.conf.task_default_queue == "celery"
    assert sent_to(app, "misc.x") == ("celery", 0)


def test_exchange_and_routing_key_default_to_the_default_queue_as_in_celery() -> None:
    app = make_app(task_default_queue="jobs")
    assert app.conf.task_default_exchange == "jobs"
    assert app.conf.task_default_routing_key == "jobs"
    assert app.conf.task_default_exchange_type == "direct"
    app.conf.update(
        {"CELERY_DEFAULT_EXCHANGE": "tasks", "CELERY_DEFAULT_EXCHANGE_TYPE": "topic"},
    )
    assert (app.conf.task_default_exchange, app.conf.task_default_exchange_type) == (
        "tasks",
        "topic",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("headers", "does not match message headers"),
        ("drect", "use one of direct, topic, fanout, headers"),
    ],
)
def test_an_exchange_type_conveyor_cannot_honour_is_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(task_default_exchange_type=value)


# -- task_create_missing_queues ------------------------------------------------------------
def test_an_undeclared_queue_is_used_with_a_warning_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(task_queues=["celery", "feeds"], task_routes={"video.*": {"queue": "videos"}})
    with caplog.at_level(logging.WARNING, logger="conveyor.routing"):
        assert sent_to(app, "video.tasks.encode")[0] == "videos"
        sent_to(app, "video.tasks.encode")  # each warning is logged once
    route, call = [r.getMessage() for r in caplog.records]
    assert "task_routes['video.*'] sends to queue 'videos', which task_queues does not" in route
    assert "a call of 'video.tasks.encode' goes (by task_routes['video.*']) to queue" in call
    assert "task_create_missing_queues=True: the queue is used all the same" in call


def test_without_create_missing_queues_an_undeclared_queue_is_an_error() -> None:
    app = make_app(
        task_queues=["celery"], task_create_missing_queues=False, task_routes={"video.*": "videos"}
    )
    with pytest.raises(ConfigurationError, match=re.escape("queue 'videos', which task_queues")):
        app.tasks["video.tasks.encode"].delay()
    assert app.broker.queue_stats() == []


# -- routing keys --------------------------------------------------------------------------
def test_the_routing_guide_topic_exchange_routes_by_routing_key() -> None:
    """Celery's routing guide: queues bound to a `media` topic exchange, routes giving only an
    exchange and a routing key."""
    media = Exchange("media", type="topic")
    app = make_app(
        task_queues=[
            Queue("celery", Exchange("celery"), routing_key="celery"),
            Queue("videos", media, routing_key="media.video.#"),
            Queue("images", media, routing_key="media.image.*"),
        ],
        task_routes={
            "video.*": {"exchange": "media", "routing_key": "media.video.encode.hd"},
            "media.*": {"exchange": "media", "routing_key": "media.image.resize"},
        },
    )
    assert sent_to(app, "video.tasks.encode")[0] == "videos"
    assert sent_to(app, "media.tasks.resize")[0] == "images"
    assert sent_to(app, "misc.x")[0] == "celery"


def test_declared_queues_take_the_default_exchange_type() -> None:
    app = make_app(
        task_default_exchange="tasks",
        task_default_exchange_type="topic",
        task_queues=[Queue("celery", routing_key="task.#"), Queue("feeds", routing_key="feed.#")],
        task_routes={"feed.tasks.*": {"routing_key": "feed.import"}},
    )
    assert sent_to(app, "feed.tasks.import_feed")[0] == "feeds"


def test_a_routing_key_without_declared_queues_names_the_queue() -> None:
    app = make_app(task_routes={"feed.*": {"exchange": "feeds", "routing_key": "feeds"}})
    assert sent_to(app, "feed.tasks.import_feed")[0] == "feeds"


def test_a_routing_key_reaching_two_queues_is_refused() -> None:
    fanout = Exchange("all", type="fanout")
    app = make_app(
        task_queues=[Queue("celery"), Queue("a", fanout), Queue("b", fanout)],
        task_routes={"misc.*": {"exchange": "all", "routing_key": "x"}},
    )
    with pytest.raises(ConfigurationError, match="reaches queues a, b; Celery would run the call"):
        app.finalize()


def test_a_given_queue_wins_over_the_routing_key() -> None:
    app = make_app(task_routes={"feed.*": {"queue": "feeds", "routing_key": "feed.import"}})
    assert sent_to(app, "feed.tasks.import_feed")[0] == "feeds"


def test_celerys_dict_form_of_task_queues_keeps_bindings() -> None:
    app = make_app(
        task_queues={
            "celery": {"exchange": "celery", "routing_key": "celery"},
            "feeds": {"exchange": "feeds", "exchange_type": "topic", "binding_key": "feed.#"},
        },
        task_routes={"feed.*": {"routing_key": "feed.import"}},
    )
    assert [q.name for q in app.conf.task_queues] == ["celery", "feeds"]
    assert sent_to(app, "feed.tasks.import_feed")[0] == "feeds"


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("feed.#", "feed", True),
        ("feed.#", "feed.import.rss", True),
        ("feed.*", "feed.import", True),
        ("feed.*", "feed.import.rss", False),
        ("*.image.#", "media.image", True),
        ("#.hd", "media.video.hd", True),
        ("#", "", True),
        ("media.video", "media.image", False),
    ],
)
def test_amqp_topic_patterns(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


# -- priorities ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("max_priority", "mapping"),
    [
        (10, {0: 0, 1: 1, 5: 5, 6: 5, 7: 6, 9: 8, 10: 9}),
        (255, {0: 0, 14: 0, 15: 1, 128: 5, 240: 8, 241: 9, 255: 9}),
        (None, {0: 0, 4: 4, 9: 9}),
    ],
)
def test_the_documented_priority_mapping(max_priority: int | None, mapping: dict[int, int]) -> None:
    assert {p: to_band(p, max_priority, "q") for p in mapping} == mapping


def test_callers_priorities_are_read_on_task_queue_max_priority() -> None:
    app = make_app(task_queue_max_priority=255, task_default_priority=128)
    assert sent_to(app, "misc.x") == ("celery", 5)
    assert sent_to(app, "misc.x", priority=255) == ("celery", 9)
    urgent = app.task(name="urgent", priority=200)(_noop)
    assert sent_to(app, urgent.name)[1] == 7
    with pytest.raises(ConfigurationError, match="got 256"):
        app.tasks["misc.x"].apply_async(priority=256)


def test_a_queue_max_priority_is_its_own_scale() -> None:
    app = make_app(
        task_queues=[Queue("celery"), Queue("hi", max_priority=10)],
        task_routes={"video.*": "hi"},
    )
    assert sent_to(app, "video.tasks.encode", priority=10) == ("hi", 9)
    assert sent_to(app, "misc.x", priority=9) == ("celery", 9)  # conveyor's own 0–9
    with pytest.raises(ConfigurationError, match="priority 11 for queue 'hi' is above"):
        app.tasks["video.tasks.encode"].apply_async(priority=11)


def test_kombu_queue_objects_keep_their_max_priority() -> None:
    kombu_like = SimpleNamespace(
        name="hi",
        exchange=SimpleNamespace(name="hi", type="direct"),
        routing_key="hi",
        max_priority=5,
    )
    app = make_app(task_queues=[kombu_like, "celery"], task_routes={"video.*": "hi"})
    assert app.conf.task_queues[0] == Queue("hi", Exchange("hi"), "hi", max_priority=5)
    assert sent_to(app, "video.tasks.encode", priority=5) == ("hi", 9)


@pytest.mark.parametrize("value", [0, 256, "10", True])
def test_task_queue_max_priority_is_1_to_255(value: object) -> None:
    with pytest.raises(ConfigurationError, match="task_queue_max_priority must be an integer"):
        make_app(task_queue_max_priority=value)


def test_rabbitmq_queue_arguments_give_the_max_priority() -> None:
    queue = Queue("tasks", Exchange("tasks"), "tasks", queue_arguments={"x-max-priority": 10})
    app = make_app(task_queues=[queue], task_default_queue="tasks")
    assert sent_to(app, "misc.x", priority=10) == ("tasks", 9)


def test_queue_arguments_conveyor_cannot_honour_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="queue_arguments\\['x-message-ttl'\\] is refused"):
        Queue("q", queue_arguments={"x-message-ttl": 60000})


def test_a_worker_without_queues_consumes_every_declared_queue_as_in_celery() -> None:
    from conveyor.testing import solo_worker

    app = make_app(task_queues=["feeds", "celery"], task_routes={"feed.*": "feeds"})
    calls = [app.tasks["feed.tasks.import_feed"].delay(), app.tasks["misc.x"].delay()]
    worker = solo_worker(app)
    assert worker.info().queues == ("feeds", "celery")
    worker.run_until_idle()
    assert [c.get(timeout=1) for c in calls] == [None, None]  # both ran


def test_without_task_queues_a_worker_consumes_the_default_queue() -> None:
    from conveyor.testing import solo_worker

    assert solo_worker(make_app(task_default_queue="jobs")).info().queues == ("jobs",)


@pytest.mark.parametrize("create_missing", [True, False])
def test_a_schedule_entry_for_an_undeclared_queue_follows_create_missing_queues(
    create_missing: bool,
) -> None:
    from conveyor.scheduler.beat import configured_entries

    app = make_app(
        task_queues=["celery"],
        task_create_missing_queues=create_missing,
        beat_schedule={"n": {"task": "misc.x", "schedule": 60.0, "options": {"queue": "night"}}},
    )
    if create_missing:
        assert [e.queue for e in configured_entries(app)] == ["night"]
    else:
        with pytest.raises(ConfigurationError, match="'night', which task_queues does not"):
            configured_entries(app)


def test_a_schedule_entry_priority_must_fit_its_queue_scale() -> None:
    from conveyor.scheduler.beat import configured_entries

    entry = {"task": "misc.x", "schedule": 60.0, "options": {"priority": 200}}
    app = make_app(beat_schedule={"n": entry})
    with pytest.raises(ConfigurationError, match="schedule entry 'n': priority 200 for queue"):
        configured_entries(app)
    app.conf.task_queue_max_priority = 255
    assert [e.priority for e in configured_entries(app)] == [200]


def test_kombus_broadcast_queues_are_refused() -> None:
    class Broadcast(SimpleNamespace):  # kombu.common.Broadcast, by its class name
        pass

    with pytest.raises(ConfigurationError, match="conveyor runs each call once, on one worker"):
        make_app(task_queues=[Broadcast(name="broadcast_tasks", exchange=None)])


def test_kombus_declaration_flags_are_accepted() -> None:
    exchange = Exchange("media", type="topic", auto_delete=False, delivery_mode=2)
    queue = Queue("videos", exchange, routing_key="media.#", no_declare=True)
    assert hash(Queue("q", queue_arguments={"x-max-priority": 3})) is not None
    assert make_app(task_queues=[queue, "celery"]).conf.task_queues[0] == queue
