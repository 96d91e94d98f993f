"""Celery settings real projects set: result URLs in Celery's SQLAlchemy form mapped onto
conveyor's stores, backends conveyor has no store for refused with the alternative, and the
harmless settings (accepted.py) kept readable, checked, and refused at values conveyor cannot
honour."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor._urls import result_store_url
from conveyor.accepted import ACCEPTED
from conveyor.config import Config
from conveyor.results.sqlite import SqliteResultStore


@pytest.mark.parametrize(
    ("url", "store_url"),
    [
        ("db+sqlite:///results.sqlite", "sqlite:///results.sqlite"),
        ("db+sqlite:////var/lib/proj/results.db", "sqlite:////var/lib/proj/results.db"),
        ("db+postgresql://u:pw@h/db", "postgresql://u:pw@h/db"),
        ("db+postgresql+psycopg2://u@h:5433/db", "postgresql://u@h:5433/db"),
        ("db+postgres://h/db", "postgresql://h/db"),
        ("redis://h:6379/1", "redis://h:6379/1"),
        ("sqlite:///r.db", "sqlite:///r.db"),
        ("rpc://", "redis://broker/0"),  # Celery's tutorial: results come back via the broker
    ],
)
def test_celerys_sqlalchemy_result_urls_map_onto_conveyors_stores(url: str, store_url: str) -> None:
    assert result_store_url(url, "redis://broker/0") == store_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("db+mysql://u:secret@h/db", "conveyor has no mysql store"),
        ("amqp://", "Celery 5 removed the amqp result backend"),
        ("django-cache", "Django's cache"),
        ("cache+memcached://127.0.0.1:11211/", "no memcached store"),
        ("mongodb://h/db", "no MongoDB store"),
        ("db+sqlite://", "in-memory SQLite database"),
    ],
)
def test_result_backends_without_a_store_are_refused_when_set(url: str, message: str) -> None:
    conf = Config()
    with pytest.raises(ConfigurationError, match=message) as err:
        conf.result_backend = url
    assert "secret" not in str(err.value)


def test_an_app_with_a_db_sqlite_backend_stores_results_in_that_file(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    app = Conveyor("urls", broker="memory://", backend=f"db+sqlite:///{path}", set_as_current=False)
    assert app.conf.result_backend == f"db+sqlite:///{path}"  # as Celery: read back as given
    assert app.urls[1] == f"sqlite:///{path}"
    assert isinstance(app.results, SqliteResultStore)
    app.conf.result_backend = "db+sqlite:///other.db"
    assert app.conf.result_backend == "db+sqlite:///other.db"  # read back as written


def test_the_tutorials_rpc_backend_keeps_results_beside_the_broker(tmp_path: Path) -> None:
    broker = f"sqlite:///{tmp_path / 'q.db'}"
    app = Conveyor("tasks", broker=broker, backend="rpc://", set_as_current=False)
    assert app.urls == (broker, broker)
    app.conf.result_backend = "rpc://"
    assert app.conf.result_backend == "rpc://"


def test_harmless_celery_settings_are_kept_and_read_back() -> None:
    app = Conveyor("s", broker="memory://", set_as_current=False)
    assert app.conf.broker_connection_retry_on_startup is None  # Celery's default
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_pool_limit=None,
        worker_enable_remote_control=False,
        task_default_delivery_mode="persistent",
        result_chord_join_timeout=10,
    )
    assert app.conf.broker_connection_retry_on_startup is True
    assert app.conf["broker_pool_limit"] is None
    assert app.conf.get("worker_enable_remote_control") is False
    assert "result_chord_join_timeout" in set(app.conf)
    assert "'broker_connection_retry_on_startup': True" in repr(app.conf)


def test_old_and_namespaced_names_of_harmless_settings() -> None:
    conf = Config()
    conf.update({"BROKER_HEARTBEAT": 0, "CELERY_EVENT_QUEUE_EXPIRES": 60})
    django_settings = SimpleNamespace(
        CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP=True,
        CELERY_TASK_CREATE_MISSING_QUEUES=False,
        CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS=False,
    )
    conf.config_from_object(django_settings, namespace="CELERY")
    assert (conf.broker_heartbeat, conf.event_queue_expires) == (0, 60)
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_create_missing_queues is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("broker_pool_limit", "ten", "must be a number"),
        ("broker_connection_retry", "yes", "must be True or False"),
        ("task_default_delivery_mode", 3, "use one of 1, 2, 'transient', 'persistent'"),
        ("event_serializer", "pickle", "use one of 'json'"),
        (
            "worker_cancel_long_running_tasks_on_connection_loss",
            True,
            "never cancels a running call",
        ),
    ],
)
def test_accepted_settings_are_checked(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Config().update({name: value})


def test_unknown_settings_still_fail_naming_the_closest() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'broker_pool_limit'"):
        Config().update(broker_pool_limt=5)


def test_every_accepted_setting_takes_celerys_default_and_says_why() -> None:
    conf = Config()
    for name, accepted in ACCEPTED.items():
        conf.update({name: accepted.default})
        assert accepted.why, name


def test_imports_and_include_settings_are_imported_when_the_app_finalizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("celery_imports_a", "celery_include_b"):
        (tmp_path / f"{name}.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = Conveyor("s", broker="memory://", set_as_current=False)
    app.config_from_object({"imports": ("celery_imports_a",), "CELERY_INCLUDE": "celery_include_b"})
    assert app.conf.imports == ("celery_imports_a",) and app.conf.include == ("celery_include_b",)
    app.finalize()
    assert {"celery_imports_a", "celery_include_b"} <= set(sys.modules)


def test_imports_must_name_modules() -> None:
    with pytest.raises(ConfigurationError, match="must be a module name or a list of them"):
        Config().update(imports=("ok", 3))


def test_celerys_redis_transport_options_are_accepted() -> None:
    """The Redis priority snippet of Celery's docs, and kombu's publish-retry options."""
    conf = Config()
    conf.broker_transport_options = {
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        "visibility_timeout": 3600,
        "max_retries": 3,
        "interval_start": 0,
    }
    assert conf.broker_transport_options["sep"] == ":"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("global_keyprefix", "redis://host:6379/0?prefix=name"),
        ("master_name", "Redis Sentinel is not supported"),
        ("visibilty_timeout", "did you mean 'visibility_timeout'"),
    ],
)
def test_transport_options_conveyor_cannot_honour_are_refused(key: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Config().update(broker_transport_options={key: "x"})


def test_celerys_environment_variables_are_read_when_conveyors_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVEYOR_BROKER_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_RESULT_BACKEND", raising=False)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://celery-env:6379/0")
    monkeypatch.setenv("CELERY_RESULT_BACKEND", "db+sqlite:///results.sqlite")
    app = Conveyor("env", set_as_current=False)
    assert app.urls == ("redis://celery-env:6379/0", "sqlite:///results.sqlite")
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "sqlite:///mine.db")
    assert app.urls[0] == "sqlite:///mine.db"  # conveyor's own variable first
    assert Conveyor("e", broker="memory://", set_as_current=False).urls[0] == "memory://"


def test_a_celery_log_format_string_is_refused_saying_what_to_use() -> None:
    with pytest.raises(ConfigurationError, match="is a logging format string, as Celery's"):
        Config().update({"CELERYD_LOG_FORMAT": "[%(asctime)s:] %(message)s"})
