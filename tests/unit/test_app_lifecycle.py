"""The app's Celery-shaped construction and lifecycle: constructor settings, task_cls and
app.Task, class-based tasks, configure/finalize signals with add_periodic_task, the current
app and task proxies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import conveyor.app as app_module
from conveyor import Conveyor, Task, crontab, current_app, current_task
from conveyor.errors import ConfigurationError
from conveyor.request import Request, running
from conveyor.scheduler.schedule import Interval


@pytest.fixture(autouse=True)
def _restore_current_app() -> Iterator[None]:
    saved = (app_module._current_app, app_module._default_app)
    yield
    app_module._current_app, app_module._default_app = saved


def mem(**kwargs: Any) -> Conveyor:
    return Conveyor("proj", broker="memory://", set_as_current=False, **kwargs)


# -- constructor settings -------------------------------------------------------------------
def test_constructor_keywords_are_settings_checked_at_once() -> None:
    app = mem(task_acks_late=False, worker_prefetch_multiplier=4)
    assert app.conf.task_acks_late is False and app.conf.worker_prefetch_multiplier == 4
    assert app.strict_typing is True and mem(strict_typing=False).strict_typing is False
    with pytest.raises(ConfigurationError, match="task_acks_late"):
        mem(task_acks_lat=True)
    with pytest.raises(ConfigurationError, match="positive integer"):
        mem(worker_prefetch_multiplier=0)


def test_constructor_settings_sit_above_config_from_object_as_in_celery() -> None:
    app = mem(task_default_priority=7, changes={"timezone": "Europe/Paris"})
    app.config_from_object(
        {"task_default_priority": 1, "timezone": "UTC", "task_max_deliveries": 9}
    )
    assert app.conf.task_default_priority == 7 and app.conf.timezone == "Europe/Paris"
    assert app.conf.task_max_deliveries == 9  # what the constructor did not set is read
    app.conf.task_default_priority = 2  # a write after construction wins, as in Celery
    app.config_from_object({"task_default_priority": 1})
    assert app.conf.task_default_priority == 2


def test_config_source_and_namespace_are_read_at_construction() -> None:
    class Settings:
        CELERY_TASK_MAX_DELIVERIES = 3
        OTHER = "ignored: not under the namespace"

    app = mem(config_source=Settings, namespace="CELERY")
    assert app.conf.task_max_deliveries == 3
    app.config_from_object({"CELERY_TIMEZONE": "Asia/Tokyo"})  # the app's namespace applies
    assert app.conf.timezone == "Asia/Tokyo"


def test_config_from_object_silent_skips_a_missing_module_only() -> None:
    app = mem()
    app.config_from_object("no_such_settings_module_here", silent=True)
    with pytest.raises(ImportError):
        app.config_from_object("no_such_settings_module_here")


@pytest.mark.parametrize(
    ("keyword", "value", "reason"),
    [
        ("amqp", "celery.app.amqp:AMQP", "no AMQP"),
        ("loader", "default", "one loader"),
        ("fixups", ["myproj.fixups:Custom"], "no fix-up plug-ins besides Django's"),
        ("autofinalize", False, "finalizes the app when it is first used"),
    ],
)
def test_celery_internals_are_refused_with_the_reason(
    keyword: str, value: Any, reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason):
        mem(**{keyword: value})


def test_fixups_none_means_django_s_and_an_empty_list_none(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("django")
    from conveyor.contrib.django.fixup import fixup_of

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "proj.settings")  # only its presence counts
    assert fixup_of(mem()) is not None
    assert fixup_of(mem(fixups=["celery.fixups.django:fixup"])) is not None
    assert fixup_of(mem(fixups=[])) is None


# -- task classes ---------------------------------------------------------------------------
def test_task_cls_call_override_runs_for_every_task() -> None:
    seen: list[str] = []

    class ContextTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(self.name)
            return self.run(*args, **kwargs)

    app = mem(task_cls=ContextTask)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert isinstance(add, ContextTask) and add(2, 3) == 5
    assert seen == [add.name]


def test_task_cls_may_be_named_by_a_string_and_must_be_a_task() -> None:
    assert mem(task_cls="conveyor.task:Task").task_cls is Task
    with pytest.raises(ConfigurationError, match=r"subclass of conveyor\.Task"):
        mem(task_cls="collections:OrderedDict")


def test_task_cls_attributes_are_option_defaults() -> None:
    class Patient(Task):
        max_retries = 9
        default_retry_delay = 5.0

    app = mem(task_cls=Patient)

    @app.task
    def one() -> None: ...

    @app.task(max_retries=1)
    def two() -> None: ...

    assert (one.options.max_retries, one.options.default_retry_delay) == (9, 5.0)
    assert two.options.max_retries == 1


def test_bound_task_run_receives_the_task() -> None:
    app = mem()

    @app.task(bind=True)
    def whoami(self: Task, suffix: str) -> str:
        return self.name + suffix

    assert whoami.run("!") == whoami("!") == f"{__name__}.whoami!"


def test_app_task_is_the_base_class_bound_to_the_app() -> None:
    app = mem()
    assert issubclass(app.Task, Task) and app.Task is app.Task
    assert app.Task._app is app

    class Base(app.Task):  # type: ignore[name-defined,misc]  # a class made at run time
        queue = "high"

    @app.task(base=Base)
    def job() -> str:
        return "done"

    assert isinstance(job, Base) and job.options.queue == "high" and job.app is app


def test_register_task_with_a_class_based_task() -> None:
    app = mem()

    class Resize(app.Task):  # type: ignore[name-defined,misc]  # a class made at run time
        max_retries = 2

        def run(self, width: int) -> int:
            return width // 2

    class Named(Task):
        name = "images.named"

        def run(self) -> str:
            return self.request.id or "direct"

    resize = app.register_task(Resize())
    named = app.register_task(Named)  # a class is instantiated, as Celery does
    assert resize.name == f"{__name__}.Resize" and app.tasks[resize.name] is resize
    assert resize(10) == 5 and resize.options.max_retries == 2
    assert named.name == "images.named" and named() == "direct"
    assert app.register_task(Resize(), max_retries=4).options.max_retries == 4


def test_register_task_refuses_a_class_without_run() -> None:
    class Empty(Task):
        pass

    with pytest.raises(ConfigurationError, match=r"defines no run\(\)"):
        mem().register_task(Empty())
    with pytest.raises(NotImplementedError, match="run"):
        Empty().run()


# -- signals and periodic tasks -------------------------------------------------------------
def test_periodic_tasks_added_on_after_configure_reach_beat_schedule() -> None:
    app = mem()
    calls: list[Conveyor] = []

    @app.on_after_configure.connect
    def setup(sender: Conveyor, **kwargs: Any) -> None:
        calls.append(sender)
        sender.add_periodic_task(10.0, test.s("hello"), name="add every 10")
        sender.add_periodic_task(crontab(hour=7, minute=30, day_of_week=1), test.s("Mondays!"))

    @app.task
    def test(arg: str) -> None: ...

    assert app.conf.beat_schedule == {} and not calls
    app.finalize()
    app.finalize()
    assert calls == [app]  # sent once
    schedule = app.conf.beat_schedule
    assert schedule["add every 10"] == {
        "schedule": 10.0,
        "task": test.name,
        "args": ("hello",),
        "kwargs": {},
        "options": {},
    }
    assert schedule[f"{test.name}('Mondays!')"]["schedule"] == crontab(
        hour=7, minute=30, day_of_week=1
    )


def test_add_periodic_task_before_configure_waits_and_is_checked_at_once() -> None:
    app = mem()

    @app.task
    def ping(n: int = 0) -> None: ...

    key = app.add_periodic_task(60, ping.s(), args=(1,), queue="beat", name="ping")
    assert key == "ping" and app.conf.beat_schedule == {}
    app.configure()
    entry = app.conf.beat_schedule["ping"]
    assert entry["args"] == (1,) and entry["options"] == {"queue": "beat"}
    with pytest.raises(ConfigurationError, match="unknown key"):
        app.add_periodic_task(60, ping.s(), shadow="x")
    with pytest.raises(ConfigurationError, match="must be positive"):
        app.add_periodic_task(-1, ping.s())


def test_on_after_finalize_is_sent_once_after_include_is_imported() -> None:
    app = mem()
    seen: list[Any] = []

    @app.on_after_finalize.connect
    def finalized(sender: Conveyor, **kwargs: Any) -> None:
        seen.append(sender)
        sender.add_periodic_task(Interval(30.0), report, name="report")

    @app.task
    def report() -> None: ...

    app.finalize()
    app.finalize()
    assert seen == [app] and app.conf.beat_schedule["report"]["task"] == report.name


# -- current app and task -------------------------------------------------------------------
def test_current_app_proxy_follows_the_current_then_default_app() -> None:
    app_module._current_app = app_module._default_app = None
    with pytest.raises(ConfigurationError, match="no Conveyor app exists yet"):
        current_app.conf  # noqa: B018 - the access is the test
    assert "none yet" in repr(current_app)
    flask_app = mem()
    flask_app.set_default()
    assert current_app.main == "proj" and isinstance(current_app, Conveyor)
    newer = Conveyor("newer", broker="memory://")
    assert current_app == newer and current_app.conf is newer.conf
    assert current_app._get_current_object() is newer  # type: ignore[attr-defined]


def test_current_task_is_the_running_task_or_none() -> None:
    app = mem()
    app.set_current()

    @app.task(bind=True)
    def inner(self: Task) -> str:
        assert current_task is not None
        return current_task.name

    @app.task
    def plain() -> str | None:
        return current_task.request.id if current_task else None

    assert not current_task and repr(current_task) == "None"
    assert inner() == inner.name
    with running(Request(id="abc", task=plain.name)):  # as a worker runs a call
        assert plain.run() == "abc"


# -- small conveniences ---------------------------------------------------------------------
def test_config_from_envvar_reads_the_named_module(monkeypatch: pytest.MonkeyPatch) -> None:
    app = mem()
    monkeypatch.delenv("APP_TEST_SETTINGS", raising=False)
    assert app.config_from_envvar("APP_TEST_SETTINGS", silent=True) is False
    with pytest.raises(ConfigurationError, match="APP_TEST_SETTINGS is not set"):
        app.config_from_envvar("APP_TEST_SETTINGS")
    monkeypatch.setitem(sys.modules, "app_test_settings", SimpleNamespace(task_max_deliveries=4))
    monkeypatch.setenv("APP_TEST_SETTINGS", "app_test_settings")
    assert app.config_from_envvar("APP_TEST_SETTINGS") is True
    assert app.conf.task_max_deliveries == 4


def test_signature_now_and_with_block(fake_clock: Any) -> None:
    with Conveyor(
        "proj", broker="memory://", clock=fake_clock, set_as_current=False, timezone="Asia/Tokyo"
    ) as app:
        sig = app.signature("proj.add", (2, 2), queue="high")
        assert (sig.task, sig.args, sig.queue, sig.app) == ("proj.add", (2, 2), "high", app)
        now = app.now()
        assert now.timestamp() == pytest.approx(fake_clock.now())
        assert now.utcoffset() == timedelta(hours=9) and app.timezone.key == "Asia/Tokyo"
        app.broker  # noqa: B018 - opened, to be closed on leaving
    assert app._broker is None


def test_an_unbound_task_class_belongs_to_its_app() -> None:
    app = mem()

    class Unbound(app.Task):  # type: ignore[name-defined,misc]  # a class made at run time
        def run(self) -> None: ...

    assert Unbound().app is app
    app.set_current()
    assert Task().app is app  # no app of its own: the current app, as in Celery


def test_bootsteps_and_user_options_are_refused_saying_what_to_use() -> None:
    app = mem()
    with pytest.raises(ConfigurationError, match="conveyor health"):
        app.steps["worker"].add(object)
    with pytest.raises(ConfigurationError, match="no extra options"):
        app.user_options["worker"].add(object)


def test_assigning_app_task_changes_the_base_of_later_tasks() -> None:
    app = mem()

    @app.task
    def before() -> None: ...

    class MyBaseTask(Task):
        queue = "hipri"

    app.Task = MyBaseTask  # Celery's application guide

    @app.task
    def after() -> None: ...

    assert issubclass(app.Task, MyBaseTask) and app.Task._app is app
    assert type(before) is Task and before.options.queue is None
    assert isinstance(after, MyBaseTask) and after.options.queue == "hipri"


def test_constructor_urls_read_back_through_conf() -> None:
    app = Conveyor("proj", "memory://", "memory://", set_as_current=False)
    assert (app.conf.broker_url, app.conf.result_backend) == ("memory://", "memory://")
    app.config_from_object({"broker_url": "redis://elsewhere:6379/0"})
    assert app.conf.broker_url == "memory://" and app.urls[0] == "memory://"


def test_celery_module_paths_import_after_the_rename() -> None:
    import importlib

    from conveyor.utils import uuid

    assert importlib.import_module("conveyor.app.task").Task is Task
    assert importlib.import_module("conveyor.app.base").Conveyor is Conveyor
    assert len(uuid()) == 36 and uuid() != uuid()
