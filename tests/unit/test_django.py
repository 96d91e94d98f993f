"""conveyor.contrib.django in this process: the fix-up an app gets with DJANGO_SETTINGS_MODULE,
discovery of INSTALLED_APPS, connections closed around worker tasks, and sending on commit.
(tests/compat/test_django_project.py runs Celery's Django example with real workers.)"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor import Conveyor, signals
from conveyor.contrib.django import connections, fixup
from conveyor.contrib.django.fixup import fixup_of, run_checks
from conveyor.contrib.django.task import DjangoTask
from conveyor.task import Task

django = pytest.importorskip("django")

SETTINGS = "tests.unit.django_site.settings"
_HOOKS = (
    (signals.worker_init, "conveyor.django.worker_init"),
    (signals.worker_process_init, "conveyor.django.worker_process_init"),
    (signals.task_prerun, "conveyor.django.prerun"),
    (signals.task_postrun, "conveyor.django.postrun"),
    (signals.worker_init, "conveyor.django.checks"),
    (signals.beat_init, "conveyor.django.checks"),
)


@pytest.fixture(scope="module", autouse=True)
def _database_file() -> Iterator[None]:
    yield
    from django.conf import settings

    if settings.configured:
        Path(settings.DATABASES["default"]["NAME"]).unlink(missing_ok=True)


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Conveyor]:
    """An app made as Celery's Django docs make it (DJANGO_SETTINGS_MODULE set first), on the
    memory broker. The worker receivers the fix-up connects are disconnected afterwards."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", SETTINGS)
    monkeypatch.setenv("CONVEYOR_SKIP_CHECKS", "1")
    app = Conveyor("site", broker="memory://", backend="memory://", set_as_current=False)
    yield app
    app.close()
    for signal, uid in _HOOKS:
        signal.disconnect(dispatch_uid=uid)


@pytest.fixture
def ready_site(site: Conveyor) -> Conveyor:
    site.import_modules()  # sets Django up
    return site


def _add(x: int, y: int) -> int:
    return x + y


def _noop() -> None:
    return None


def _count(app: Conveyor) -> int:
    return sum(s.ready for s in app.broker.queue_stats())


def test_an_app_made_with_django_settings_gets_the_fixup(
    site: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fixup_of(site) is not None
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    plain = Conveyor("plain", broker="memory://", set_as_current=False)
    assert fixup_of(plain) is None


def test_no_packages_means_the_installed_apps_once_django_is_set_up(site: Conveyor) -> None:
    site.autodiscover_tasks()
    site.import_modules()
    from django.apps import apps

    assert apps.ready
    assert sys.modules["tests.unit.django_site.shop.tasks"].DISCOVERED is True
    assert "django.contrib.contenttypes.tasks" not in sys.modules  # no such module: skipped


def test_system_checks_are_logged_errors_as_errors(
    ready_site: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    from django.core import checks

    def warn_and_fail(**kwargs: Any) -> list[checks.CheckMessage]:
        return [checks.Warning("a warning", id="t.W1"), checks.Error("an error", id="t.E1")]

    checks.register(warn_and_fail)
    try:
        with caplog.at_level(logging.WARNING, logger="conveyor.django"):
            run_checks()
    finally:
        checks.registry.registry.registered_checks.discard(warn_and_fail)
    levels = {r.getMessage().split("?: ")[-1].split(":")[0]: r.levelno for r in caplog.records}
    assert levels == {"(t.W1) a warning": logging.WARNING, "(t.E1) an error": logging.ERROR}


def test_a_worker_task_starts_and_ends_without_an_open_connection(ready_site: Conveyor) -> None:
    from django.db import connection

    signals.worker_process_init.send(sender=None)  # as in a pool child: wraps the tasks
    task = ready_site.task(name="noop")(_noop)
    connection.ensure_connection()
    signals.task_prerun.send(sender=task, task_id="1", task=task, args=(), kwargs={})
    assert connection.connection is None
    connection.ensure_connection()
    signals.task_postrun.send(
        sender=task, task_id="1", task=task, args=(), kwargs={}, retval=None, state="SUCCESS"
    )
    assert connection.connection is None


def test_an_eager_call_keeps_the_callers_connection(ready_site: Conveyor) -> None:
    from django.db import connection

    signals.worker_init.send(sender=None)
    eager = SimpleNamespace(request=SimpleNamespace(is_eager=True))
    connection.ensure_connection()
    signals.task_prerun.send(sender=eager, task_id="1", task=eager, args=(), kwargs={})
    assert connection.connection is not None  # inside the caller's transaction: left alone


def test_without_a_worker_task_signals_leave_connections_alone(ready_site: Conveyor) -> None:
    from django.db import connection

    task = ready_site.task(name="noop")(_noop)
    connection.ensure_connection()
    signals.task_prerun.send(sender=task, task_id="1", task=task, args=(), kwargs={})
    assert connection.connection is not None  # a web process: Django manages its connections


def test_delay_on_commit_sends_at_the_commit(ready_site: Conveyor) -> None:
    from django.db import transaction

    add = ready_site.task(name="add")(_add)
    with transaction.atomic():
        add.delay_on_commit(2, 3)
        add.apply_async_on_commit((4, 5), countdown=0)
        assert _count(ready_site) == 0
    assert _count(ready_site) == 2


def test_nothing_is_sent_when_the_transaction_rolls_back(ready_site: Conveyor) -> None:
    from django.db import transaction

    add = ready_site.task(name="add")(_add)
    with pytest.raises(RuntimeError), transaction.atomic():
        add.delay_on_commit(2, 3)
        raise RuntimeError("roll back")
    assert _count(ready_site) == 0


def test_outside_a_transaction_the_call_is_sent_at_once(ready_site: Conveyor) -> None:
    add = ready_site.task(name="add")(_add)
    add.delay_on_commit(2, 3)
    assert _count(ready_site) == 1


def test_an_unknown_option_fails_at_the_call_not_after_the_commit(ready_site: Conveyor) -> None:
    add = ready_site.task(name="add")(_add)
    with pytest.raises(TypeError, match="nonsense"):
        add.apply_async_on_commit((1, 2), nonsense=True)


def test_django_task_is_the_task_class() -> None:
    assert DjangoTask is Task  # `class MyTask(DjangoTask)` keeps working


def test_close_database_lets_an_already_closed_error_pass(
    ready_site: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import DatabaseError
    from django.db import connections as databases

    connection = databases["default"]  # the wrapper itself, not the proxy
    connection.ensure_connection()

    def closed() -> None:
        raise DatabaseError("connection already closed")

    monkeypatch.setattr(connection, "close", closed)
    connections.close_database()  # no error: the connection is gone either way

    def broken() -> None:
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(connection, "close", broken)
    with pytest.raises(DatabaseError, match="disk I/O"):
        connections.close_database()


def test_discovery_waits_while_django_loads_its_apps(
    ready_site: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.apps import apps

    ready_site.autodiscover_tasks()
    sys.modules.pop("tests.unit.django_site.shop.tasks", None)
    with monkeypatch.context() as loading:  # as in an AppConfig.ready() that sends a call
        loading.setattr(apps, "ready", False)
        loading.setattr(apps, "loading", True)
        ready_site.import_modules()
        assert "tests.unit.django_site.shop.tasks" not in sys.modules
    ready_site.import_modules()  # Django is ready now: the discovery runs
    assert "tests.unit.django_site.shop.tasks" in sys.modules


def test_check_messages_are_logged_at_their_level(
    ready_site: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    from django.core import checks

    def report(**kwargs: Any) -> list[checks.CheckMessage]:
        return [checks.Info("fyi", id="t.I1")]

    checks.register(report)
    try:
        with caplog.at_level(logging.INFO, logger="conveyor.django"):
            run_checks()
    finally:
        checks.registry.registry.registered_checks.discard(report)
    assert [r.levelno for r in caplog.records if "t.I1" in r.getMessage()] == [logging.INFO]


@pytest.mark.parametrize("started", [signals.worker_init, signals.beat_init])
def test_checks_run_once_when_a_worker_or_scheduler_starts(
    ready_site: Conveyor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    started: signals.Signal,
) -> None:
    from django.core import checks

    def report(**kwargs: Any) -> list[checks.CheckMessage]:
        return [checks.Warning("at start", id="t.W2")]

    monkeypatch.setattr(fixup, "_checked", False)
    checks.register(report)
    try:
        ready_site.import_modules()  # loading the app (any command) does not run them
        monkeypatch.delenv("CONVEYOR_SKIP_CHECKS")
        with caplog.at_level(logging.WARNING, logger="conveyor.django"):
            started.send(sender=None)
            started.send(sender=None)
    finally:
        checks.registry.registry.registered_checks.discard(report)
    assert sum("t.W2" in r.getMessage() for r in caplog.records) == 1


def test_skip_checks_skips_them(
    ready_site: Conveyor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.core import checks

    def report(**kwargs: Any) -> list[checks.CheckMessage]:
        return [checks.Warning("skipped", id="t.W3")]

    monkeypatch.setattr(fixup, "_checked", False)
    monkeypatch.delenv("CONVEYOR_SKIP_CHECKS")
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    checks.register(report)
    try:
        with caplog.at_level(logging.WARNING, logger="conveyor.django"):
            signals.worker_init.send(sender=None)
    finally:
        checks.registry.registry.registered_checks.discard(report)
    assert not any("t.W3" in r.getMessage() for r in caplog.records)


def test_django_db_keeps_results_in_the_django_database(ready_site: Conveyor) -> None:
    from django.conf import settings

    app = Conveyor("site", broker="memory://", set_as_current=False)  # no backend argument
    app.conf.result_backend = "django-db"
    assert app.urls[1] == f"sqlite:///{settings.DATABASES['default']['NAME']}"


def test_an_app_with_the_fixup_can_be_collected(site: Conveyor) -> None:
    import gc
    import weakref

    app = Conveyor("gone", broker="memory://", set_as_current=False)
    assert fixup_of(app) is not None
    ref = weakref.ref(app)
    del app
    gc.collect()
    assert ref() is None
