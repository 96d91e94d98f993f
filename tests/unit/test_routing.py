"""Routing: Celery's task_routes forms, queue declarations, validation at finalize, priorities
through routes and base classes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from conveyor import ConfigurationError, Conveyor, Exchange, Queue, Task
from conveyor.routing import Destination, MatchKind, parse_routes

SEED_NAMES = [
    "notifications.process_pending",
    "notifications.sync_calendar",
    "calendar.sync_company",
    "sii.sync_documents",
    "sii.sync_f29",
    "whatsapp.cleanup_old_sessions",
]


def _noop(*args: Any) -> None:  # sent with arguments below; checked at the call, as Celery
    return None


def make_app(**settings: Any) -> Conveyor:
    app = Conveyor("routing", broker="memory://", backend="memory://", set_as_current=False)
    app.conf.update(settings)
    for name in SEED_NAMES:
        app.task(name=name)(_noop)
    return app


def queue_of(app: Conveyor, name: str, **call: Any) -> tuple[str, int]:
    result = app.tasks[name].apply_async(**call)
    (stored,) = [m for m in _all_messages(app) if m.envelope.id == result.id]
    return stored.envelope.queue, stored.envelope.priority


def _all_messages(app: Conveyor) -> list[Any]:
    out = []
    for stats in app.broker.queue_stats():
        out += app.broker.list_messages(stats.queue)
    return out


# -- forms ---------------------------------------------------------------------------------
def test_exact_and_glob_routes_in_a_dict() -> None:
    app = make_app(
        task_routes={
            "notifications.process_pending": {"queue": "high", "priority": 9},
            "sii.*": {"queue": "low"},
        }
    )
    assert queue_of(app, "notifications.process_pending") == ("high", 9)
    assert queue_of(app, "sii.sync_f29") == ("low", 0)
    assert queue_of(app, "calendar.sync_company") == ("celery", 0)  # Celery's default queue


def test_a_list_of_dicts_and_routers_is_checked_in_order() -> None:
    seen: list[tuple[str, Any]] = []

    def router(name: str, args: Any, kwargs: Any, options: Any, task: Any = None) -> Any:
        seen.append((name, args))
        return "calendar" if name.startswith("calendar.") else None

    app = make_app(task_routes=[{"sii.sync_f29": "slow"}, router, {"*": {"queue": "rest"}}])
    assert queue_of(app, "sii.sync_f29") == ("slow", 0)
    assert queue_of(app, "calendar.sync_company", args=(7,)) == ("calendar", 0)
    assert ("calendar.sync_company", (7,)) in seen
    assert queue_of(app, "whatsapp.cleanup_old_sessions") == ("rest", 0)


def test_celery_pair_list_and_regex_keys() -> None:
    rules = parse_routes(
        [
            [("sii.*", {"queue": "low"}), (re.compile(r"(notifications|calendar)\."), "high")],
            {"re:^whats": {"queue": "default"}},
        ]
    )
    kinds = [r.kind for r in rules]  # type: ignore[union-attr]
    assert kinds == [MatchKind.GLOB, MatchKind.REGEX, MatchKind.REGEX]
    assert rules[1].destination == Destination("high")
    app = make_app(task_routes=rules)
    assert queue_of(app, "calendar.sync_company")[0] == "high"
    assert queue_of(app, "whatsapp.cleanup_old_sessions")[0] == "default"


def test_the_task_own_queue_and_the_call_win_over_routes() -> None:
    app = make_app(task_routes={"sii.*": {"queue": "low", "priority": 2}})
    app.task(name="sii.pinned", queue="pinned")(_noop)
    assert queue_of(app, "sii.pinned") == ("pinned", 2)  # route still gives the priority
    assert queue_of(app, "sii.sync_f29", queue="manual", priority=7) == ("manual", 7)


def test_send_task_by_name_is_routed_by_the_same_rules() -> None:
    app = make_app(task_routes={"sii.*": {"queue": "low", "priority": 3}})
    result = app.send_task("sii.sync_documents", args=[1])
    (stored,) = [m for m in _all_messages(app) if m.envelope.id == result.id]
    assert (stored.envelope.queue, stored.envelope.priority) == ("low", 3)


def test_queue_objects_and_kombu_style_arguments_are_accepted() -> None:
    app = make_app(
        task_queues=[Queue("high", Exchange("high"), routing_key="high"), "default", "low"],
        task_routes={"sii.*": {"queue": "low", "exchange": "low", "routing_key": "low"}},
    )
    assert [q.name for q in app.conf.task_queues] == ["high", "default", "low"]
    assert queue_of(app, "sii.sync_f29")[0] == "low"


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sii.*", "must be a dict, a router function or a list"),
        ({"sii.*": {"queu": "low"}}, "task_routes['sii.*']: unknown key 'queu' (did you mean"),
        ({"sii.*": 5}, "task_routes['sii.*']: a destination is a dict"),
        ({"re:sii.(": "low"}, "task_routes['re:sii.(']: the regex does not compile"),
        ({"sii.*": {"queue": "low", "priority": 256}}, "task_routes['sii.*']: priority must be"),
        ([{"a": "b"}, "proj.routers.route"], "task_routes[1] is a str"),
    ],
)
def test_malformed_routes_fail_when_set_naming_the_entry(value: Any, message: str) -> None:
    app = make_app()
    with pytest.raises(ConfigurationError) as err:
        app.conf.task_routes = value
    assert message in str(err.value)


def test_malformed_queue_declaration_fails_when_set() -> None:
    with pytest.raises(ConfigurationError, match="task_queues entry 5"):
        make_app(task_queues=["a", 5])


# -- validation ----------------------------------------------------------------------------
SEED_BROKEN = {
    "app.infrastructure.celery.tasks.whatsapp.whatsapp_tasks.*": {"queue": "high"},
    "app.infrastructure.celery.tasks.sii.sii_tasks.*": {"queue": "low"},
}


def test_the_seed_mistake_fails_at_first_enqueue_with_near_misses() -> None:
    app = make_app(task_routes=SEED_BROKEN)
    with pytest.raises(ConfigurationError) as err:
        app.tasks["sii.sync_f29"].delay()
    text = str(err.value)
    assert "task routing has 2 problem(s) (sending sii.sync_f29)" in text
    assert "'app.infrastructure.celery.tasks.sii.sii_tasks.*' matches no registered task" in text
    assert "Did you mean 'sii.*'?" in text and "Did you mean 'whatsapp.*'?" in text
    assert "Closest registered tasks: sii.sync_" in text
    assert app.broker.queue_stats() == []  # nothing was sent to the wrong queue


def test_finalize_fails_until_the_routes_are_fixed() -> None:
    app = make_app(task_routes={"memory.*": {"queue": "default"}})
    with pytest.raises(
        ConfigurationError, match=re.escape("'memory.*' matches no registered task")
    ):
        app.finalize()
    app.task(name="memory.save_user_memories")(_noop)  # the lazily imported module arrives
    app.finalize()
    assert queue_of(app, "memory.save_user_memories")[0] == "default"


def test_strict_false_logs_each_problem_once_and_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(task_routes=SEED_BROKEN, task_routes_strict=False)
    with caplog.at_level(logging.WARNING, logger="conveyor.routing"):
        app.tasks["sii.sync_f29"].delay()
        app.tasks["sii.sync_f29"].delay()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("task_routes_strict=False" in w for w in warnings)


def test_routes_to_undeclared_queues_are_errors_without_create_missing_queues() -> None:
    app = make_app(
        task_queues=["high", "celery", "low"],
        task_routes={"sii.*": {"queue": "lwo"}},
        task_create_missing_queues=False,
    )
    with pytest.raises(ConfigurationError) as err:
        app.finalize()
    assert "task_routes['sii.*'] sends to queue 'lwo', which task_queues does not declare" in str(
        err.value
    )
    assert "(did you mean 'low'?)" in str(err.value)


def test_a_task_queue_option_and_a_call_queue_must_be_declared() -> None:
    app = make_app(task_queues=["celery"], task_create_missing_queues=False)
    app.finalize()
    with pytest.raises(
        ConfigurationError, match=re.escape("'late.task' goes (by task option) to queue 'emails'")
    ):
        app.task(name="late.task", queue="emails")(_noop)  # registered after finalize
    with pytest.raises(ConfigurationError, match=re.escape("goes (by call) to queue 'nowhere'")):
        app.tasks["sii.sync_f29"].apply_async(queue="nowhere")


def test_default_queue_must_be_declared_when_tasks_land_there() -> None:
    app = make_app(
        task_queues=["high"], task_routes={"sii.*": "high"}, task_create_missing_queues=False
    )
    with pytest.raises(ConfigurationError) as err:
        app.finalize()
    assert "go (by task_default_queue) to queue 'celery'" in str(err.value)
    assert "notifications.process_pending" in str(err.value)


def test_a_pattern_matching_tasks_a_worker_published_passes() -> None:
    from conveyor.brokers.base import WorkerInfo

    app = make_app(task_routes={"billing.*": {"queue": "billing"}})
    app.broker.register_worker(WorkerInfo("w@h", ("billing",), ("billing.charge",), 1, 0.0))
    app.finalize()  # billing.* matches a task a running worker registered


# -- priorities ----------------------------------------------------------------------------
class HighPriorityTask(Task):
    priority = 9
    queue = "urgent"


def test_base_task_class_attributes_are_option_defaults() -> None:
    app = make_app()
    task = app.task(base=HighPriorityTask, name="critical")(_noop)
    assert isinstance(task, HighPriorityTask)
    assert queue_of(app, "critical") == ("urgent", 9)
    overriding = app.task(base=HighPriorityTask, name="less", priority=4)(_noop)
    assert overriding.options.priority == 4


def test_base_must_be_a_task_class() -> None:
    app = make_app()
    with pytest.raises(ConfigurationError, match=re.escape("must subclass conveyor.Task")):
        app.task(base=dict, name="x")(_noop)


def test_priority_order_reaches_the_worker() -> None:
    from conveyor.testing import solo_worker

    app = make_app(task_routes={"sii.*": {"queue": "default", "priority": 1}})
    order: list[int] = []

    @app.task(name="record", priority=5)
    def record(n: int) -> None:
        order.append(n)

    for n in range(3):
        record.apply_async((n,), priority=n * 4)  # 0, 4, 8
    record.delay(99)  # task default priority 5
    solo_worker(app).run_until_idle()
    assert order == [2, 99, 1, 0]
