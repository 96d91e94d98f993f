from __future__ import annotations

import types
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.config import Config, lease_seconds
from conveyor.errors import ConfigurationError
from conveyor.ratelimit import parse_rate


def test_unknown_task_option_names_the_nearest_valid_one() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(TypeError, match=r"unknown task option 'max_retry'.*'max_retries'"):
        app.task(max_retry=3)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("time_limit", 0, "positive"),
        ("soft_time_limit", "5", "positive"),
        ("rate_limit", "10/min", "not a rate"),
        ("per_worker_rate_limit", "ten/m", "not a rate"),
    ],
)
def test_bad_limits_fail_at_decoration(option: str, value: Any, message: str) -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match=message):
        app.task(**{option: value})


def test_a_task_takes_one_kind_of_rate_limit() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="not both"):
        app.task(rate_limit="1/s", per_worker_rate_limit="1/s")


@pytest.mark.parametrize(
    ("rate", "interval"),
    [("10/m", 6.0), ("30/s", 1 / 30), ("100/h", 36.0), ("4", 0.25), (2, 0.5), ("0/s", None)],
)
def test_rates_become_intervals(rate: str, interval: float | None) -> None:
    assert parse_rate(rate) == interval


def test_options_with_built_behaviour_are_accepted() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)

    @app.task(
        name="x",
        queue="q",
        priority=9,
        bind=True,
        max_retries=5,
        default_retry_delay=1,
        autoretry_for=(ValueError,),
        retry_backoff=2,
        retry_backoff_max=60,
        retry_jitter=False,
        expires=30,
        acks_late=False,
        ignore_result=True,
        reject_on_worker_lost=False,
        time_limit=10,
        soft_time_limit=5,
        rate_limit="10/m",
        dead_letter_on_failure=True,
    )
    def f(self: object) -> None: ...

    assert f.options.priority == 9 and f.options.autoretry_for == (ValueError,)


@pytest.mark.parametrize("priority", [-1, 256, 1.5, True])
def test_priority_must_be_an_int_from_0_to_255(priority: object) -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="priority"):
        app.task(priority=priority)


def test_a_priority_above_9_is_refused_when_sent_without_a_larger_scale() -> None:
    app = Conveyor("t", broker="memory://", backend="memory://", set_as_current=False)
    task = app.task(name="t.urgent", priority=10)(lambda: None)
    with pytest.raises(ConfigurationError, match="set task_queue_max_priority"):
        task.delay()


def test_update_rejects_unknown_setting_with_nearest_name() -> None:
    conf = Config()
    with pytest.raises(ConfigurationError, match=r"'task_acks_lates'.*'task_acks_late'"):
        conf.update(task_acks_lates=True)
    with pytest.raises(ConfigurationError, match="task_default_queue"):
        conf.task_default_queu = "x"


def test_settings_not_built_yet_raise_not_implemented() -> None:
    conf = Config()
    with pytest.raises(NotImplementedError, match="worker_autoscale"):
        conf.update(worker_autoscale="10,3")
    conf.update(task_acks_late=True, worker_autoscale=None, task_routes=None)  # defaults
    conf.update(task_time_limit=300, task_acks_late=False, task_default_rate_limit="5/s")
    with pytest.raises(ConfigurationError, match="task_default_rate_limit"):
        conf.update(task_default_rate_limit="5 per s")


def test_values_are_validated() -> None:
    conf = Config()
    with pytest.raises(ConfigurationError, match="worker_prefetch_multiplier"):
        conf.update(worker_prefetch_multiplier=0)
    with pytest.raises(ConfigurationError, match="JSON only"):
        conf.update(task_serializer="pickle")
    with pytest.raises(ConfigurationError, match="time zone"):
        conf.update(timezone="Mars/Olympus")
    with pytest.raises(ConfigurationError, match="visibility_timeout"):
        conf.update(broker_transport_options={"visibilty_timeout": 60})
    conf.update(accept_content=["json"], timezone="Europe/Madrid")
    assert conf.timezone == "Europe/Madrid"


def test_visibility_timeout_in_celery_transport_options() -> None:
    conf = Config()
    assert lease_seconds(conf.settings) == 30
    conf.update(broker_transport_options={"visibility_timeout": 3600})
    assert lease_seconds(conf.settings) == 3600


def test_django_settings_with_celery_namespace() -> None:
    settings = types.SimpleNamespace(
        DEBUG=True,
        DATABASES={},
        INSTALLED_APPS=[],
        CELERY_BROKER_URL="sqlite:///x.db",
        CELERY_TASK_ACKS_LATE=True,
        CELERY_WORKER_PREFETCH_MULTIPLIER=1,
        CELERY_TASK_REJECT_ON_WORKER_LOST=True,
        CELERY_WORKER_MAX_TASKS_PER_CHILD=100,
        CELERY_RESULT_EXPIRES=86400,
        CELERYD_CONCURRENCY=4,  # Celery 3 name: Celery itself would skip it here
        CELERY_TIMEZONE="UTC",
    )
    conf = Config()
    conf.config_from_object(settings, namespace="CELERY")
    s = conf.settings
    assert s.broker_url == "sqlite:///x.db"
    assert s.worker_max_tasks_per_child == 100
    assert s.worker_concurrency == 4


def test_one_setting_given_twice_with_different_values_is_an_error() -> None:
    settings = types.SimpleNamespace(
        CELERY_WORKER_PREFETCH_MULTIPLIER=1, CELERYD_PREFETCH_MULTIPLIER=4
    )
    with pytest.raises(ConfigurationError, match="given twice"):
        Config().config_from_object(settings, namespace="CELERY")


def test_namespace_typo_is_an_error() -> None:
    settings = types.SimpleNamespace(CELERY_TASK_ACK_LATE=True)
    with pytest.raises(ConfigurationError, match="task_acks_late"):
        Config().config_from_object(settings, namespace="CELERY")


def test_unknown_old_style_name_is_reported_not_skipped() -> None:
    settings = types.SimpleNamespace(CELERYD_PREFETCH_MULTIPLER=4)
    with pytest.raises(ConfigurationError, match="CELERYD_PREFETCH_MULTIPLIER"):
        Config().config_from_object(settings, namespace="CELERY")


def test_plain_config_module_by_path(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = types.ModuleType("celeryconfig_for_test")
    module.task_default_queue = "jobs"  # type: ignore[attr-defined]
    module.os = sys  # type: ignore[attr-defined]  # modules are skipped
    module.BROKER_URL = "memory://"  # type: ignore[attr-defined]  # Celery 3 uppercase
    module.SOME_CONSTANT = 3  # type: ignore[attr-defined]  # other uppercase: not a setting
    monkeypatch.setitem(sys.modules, "celeryconfig_for_test", module)
    app = Conveyor("t", set_as_current=False)
    app.config_from_object("celeryconfig_for_test")
    assert app.conf.task_default_queue == "jobs"
    assert app.urls[0] == "memory://"


def test_env_overrides_the_default_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "sqlite:///from-env.db")
    assert Conveyor("t", set_as_current=False).urls == (
        "sqlite:///from-env.db",
        "sqlite:///from-env.db",
    )
    assert Conveyor("t", broker="memory://", set_as_current=False).urls[0] == "memory://"
    monkeypatch.delenv("CONVEYOR_BROKER_URL")
    assert Conveyor("t", set_as_current=False).urls[0] == "sqlite:///conveyor.db"


def test_conf_reads_like_celery() -> None:
    app = Conveyor("t", broker="memory://", set_as_current=False)
    app.conf.update({"task_default_queue": "a"}, worker_concurrency=4)
    app.conf.task_default_priority = 5
    assert app.conf["task_default_queue"] == "a"
    assert app.conf.get("CELERYD_CONCURRENCY") == 4
    assert app.conf.task_default_priority == 5
    assert "task_default_queue" in list(app.conf)


def test_config_from_object_accepts_module_colon_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = types.ModuleType("fake_django_conf")
    module.settings = types.SimpleNamespace(CELERY_TASK_DEFAULT_QUEUE="web")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_django_conf", module)
    conf = Config()
    conf.config_from_object("fake_django_conf:settings", namespace="CELERY")
    assert conf.task_default_queue == "web"
