"""Bounds on what a caller controls: NaN, infinite and negative seconds, queue names and task
ids are refused where they are given — per call, at decoration, on signatures, in settings and
in `beat_schedule` — naming the option, and nothing reaches the broker (on every backend)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Task
from conveyor.bounds import MAX_SECONDS
from conveyor.errors import ConfigurationError, Retry
from conveyor.states import TaskState
from conveyor.testing import solo_worker

from .. import services

NAN, INF = float("nan"), float("inf")
BAD_SECONDS = [NAN, INF, -INF, -1.0, -0.001]


def memory_app() -> Conveyor:
    app = Conveyor("t", broker="memory://", set_as_current=False)

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


@pytest.fixture
def app() -> Conveyor:
    return memory_app()


def add_of(app: Conveyor) -> Task:
    return app.tasks["t.add"]


# -- per call -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("option", ["countdown", "expires", "time_limit", "soft_time_limit"])
def test_nan_infinite_and_negative_seconds_are_refused_per_call(
    app: Conveyor, option: str, value: float
) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        add_of(app).apply_async((1, 2), **options)
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        app.send_task("t.add", (1, 2), **options)
    assert app.broker.queue_stats() == []


@pytest.mark.parametrize("option", ["expires", "time_limit", "soft_time_limit"])
def test_zero_is_refused_where_it_means_nothing(app: Conveyor, option: str) -> None:
    options: dict[str, Any] = {option: 0}
    with pytest.raises(ConfigurationError, match=f"{option} must be a positive, finite"):
        add_of(app).apply_async((1, 2), **options)


def test_countdown_zero_runs_now_and_an_eta_must_be_a_datetime(app: Conveyor) -> None:
    result = add_of(app).apply_async((1, 2), countdown=0)
    past = add_of(app).apply_async((2, 2), eta=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert solo_worker(app).run_until_idle() == 2
    assert result.get(timeout=1) == 3 and past.get(timeout=1) == 4
    with pytest.raises(ConfigurationError, match="eta must be a datetime"):
        add_of(app).apply_async((1, 2), eta=NAN)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="countdown must be"):
        add_of(app).apply_async((1, 2), countdown="5")  # type: ignore[arg-type]


def test_send_many_bounds_its_countdown_and_queue(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="countdown"):
        app.send_many(add_of(app), [(1, 2)], countdown=NAN)
    with pytest.raises(ConfigurationError, match="queue name"):
        app.send_many(add_of(app), [(1, 2)], queue="a\nb")
    assert app.broker.queue_stats() == []


BAD_QUEUES = ["", "   ", "a\nb", "tab\there", "nul\x00", "a,b", "q" * 256, "\u2028"]


@pytest.mark.parametrize("queue", BAD_QUEUES)
def test_bad_queue_names_are_refused_everywhere(app: Conveyor, queue: str) -> None:
    with pytest.raises(ConfigurationError, match="queue name"):
        add_of(app).apply_async((1, 2), queue=queue)
    with pytest.raises(ConfigurationError, match="queue name"):
        app.task(name="t.other", queue=queue)(lambda: None)
    with pytest.raises(ConfigurationError, match="queue name"):
        add_of(app).s(1, 2).set(queue=queue)
    with pytest.raises(ConfigurationError, match="queue name"):
        app.conf.task_default_queue = queue
    with pytest.raises(ConfigurationError, match="queue name"):
        app.conf.task_routes = {"t.add": queue}
    with pytest.raises(ConfigurationError, match=r"(?i)queue name"):
        app.conf.task_queues = [queue]
    with pytest.raises(ConfigurationError, match="queue name"):
        app.conf.beat_schedule = {
            "e": {"task": "t.add", "schedule": 60, "options": {"queue": queue}}
        }
    assert app.broker.queue_stats() == []


def test_good_queue_names_pass(app: Conveyor) -> None:
    for queue in ("high", "emails.priority-1", "q" * 255, "café"):
        add_of(app).apply_async((1, 2), queue=queue)
    assert {s.queue for s in app.broker.queue_stats()} == {
        "high",
        "emails.priority-1",
        "q" * 255,
        "café",
    }


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("", "non-empty"),
        ("order\n42", "unprintable character '\\\\n'"),
        ("order\r42", "unprintable"),
        ("esc\x1b[31m", "unprintable"),
        ("x" * 256, "256 characters long; the limit is 255"),
        (42, "non-empty string"),
    ],
)
def test_bad_task_ids_are_refused(app: Conveyor, task_id: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        add_of(app).apply_async((1, 2), task_id=task_id)
    with pytest.raises(ConfigurationError, match="task_id"):
        app.send_task("t.add", (1, 2), task_id=task_id)
    assert app.broker.queue_stats() == []


def test_good_task_ids_pass(app: Conveyor) -> None:
    for task_id in ("order-42", "x" * 255, "beat:poll@2027-01-15T08:00:01.000Z", "ünïcode id"):
        assert add_of(app).apply_async((1, 2), task_id=task_id).id == task_id


def test_signature_countdown_is_bounded(app: Conveyor) -> None:
    for value in BAD_SECONDS:
        with pytest.raises(ConfigurationError, match="countdown"):
            add_of(app).s(1, 2).set(countdown=value)


def test_a_retry_countdown_is_bounded(app: Conveyor) -> None:
    @app.task(name="t.retry_nan", bind=True)
    def retry_nan(self: Task) -> None:
        raise self.retry(countdown=NAN)

    result = retry_nan.delay()
    solo_worker(app).run_until_idle()
    outcome = app.results.get(result.id)
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and "retry countdown must be" in outcome.error.message


# -- too many seconds: an upper bound, and ints beyond any float ----------------------------
TOO_MANY = [1e300, MAX_SECONDS + 1, 10**400]


@pytest.mark.parametrize("value", TOO_MANY, ids=["1e300", "max+1", "10**400"])
@pytest.mark.parametrize("option", ["countdown", "expires", "time_limit", "soft_time_limit"])
def test_seconds_beyond_the_maximum_are_refused_per_call(
    app: Conveyor, option: str, value: float
) -> None:
    """`time_limit=1e300` made the solo pool's timer raise OverflowError on every call,
    countdowns and expiries of 1e300 were stored, and `countdown=10**400` raised a raw
    OverflowError."""
    options: dict[str, Any] = {option: value}
    with pytest.raises(ConfigurationError, match=f"^{option} must be .* up to 315,360,000"):
        add_of(app).apply_async((1, 2), **options)
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        app.send_task("t.add", (1, 2), **options)
    with pytest.raises(ConfigurationError, match=option):
        if option == "countdown":  # a signature's countdown; the others are task options too
            add_of(app).s(1, 2).set(countdown=value)
        else:
            app.task(name="t.other", **options)(lambda: None)
    assert app.broker.queue_stats() == []


def test_the_maximum_itself_is_accepted_and_huge_ints_are_named_not_printed(app: Conveyor) -> None:
    kept = add_of(app).apply_async((1, 2), countdown=MAX_SECONDS, expires=MAX_SECONDS)
    assert [m.envelope.id for m in app.broker.list_messages("celery")] == [kept.id]
    with pytest.raises(ConfigurationError, match=r"an integer of 401 digits$"):
        add_of(app).apply_async((1, 2), countdown=10**400)


@pytest.mark.parametrize("value", [1e300, MAX_SECONDS + 1, 10**400])
def test_seconds_beyond_the_maximum_are_refused_in_settings_and_options(
    app: Conveyor, value: float
) -> None:
    for name in ("task_time_limit", "task_soft_time_limit", "visibility_timeout"):
        with pytest.raises(ConfigurationError, match=f"setting {name} must be"):
            app.conf.update({name: value})
    for option in ("default_retry_delay", "retry_backoff_max"):
        options: dict[str, Any] = {option: value}
        with pytest.raises(ConfigurationError, match=option):
            app.task(name="t.bad", **options)(lambda: None)
    with pytest.raises(ConfigurationError, match="retry countdown"):
        Retry(countdown=value)


def test_a_huge_integer_setting_is_not_an_overflow(app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="an integer of 401 digits"):
        app.conf.task_max_deliveries = -(10**400)
    app.conf.task_message_max_size = 10**400  # no limit in effect, and no OverflowError
    assert app.conf.task_message_max_size == 10**400


# -- Retry raised directly, and max_retries ---------------------------------------------------
@pytest.mark.parametrize("value", [NAN, INF, -1.0, "5"])
def test_a_retry_raised_directly_is_checked_as_self_retry_is(app: Conveyor, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="retry countdown must be"):
        Retry(countdown=value)

    @app.task(name="t.raise_retry")
    def raise_retry() -> None:
        raise Retry(countdown=value)

    result = raise_retry.delay()
    solo_worker(app).run_until_idle()
    outcome = app.results.get(result.id)
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and "retry countdown must be" in outcome.error.message
    assert app.broker.list_messages("celery") == []  # failed, not queued again


@pytest.mark.parametrize("value", [NAN, INF, -1, 2.5, True, "3"])
def test_max_retries_must_be_a_whole_count_or_none(app: Conveyor, value: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_retries must be an integer"):
        app.task(name="t.bad", max_retries=value)(lambda: None)

    @app.task(name="t.retry_with", bind=True)
    def retry_with(self: Task) -> None:
        raise self.retry(countdown=0, max_retries=value)

    result = retry_with.delay()
    solo_worker(app).run_until_idle()
    outcome = app.results.get(result.id)
    assert outcome is not None and outcome.state is TaskState.FAILURE
    assert outcome.error is not None and "max_retries must be an integer" in outcome.error.message


def test_good_max_retries_pass(app: Conveyor) -> None:
    for value in (None, 0, 3, 10**6):
        app.task(name=f"t.ok{value}", max_retries=value)(lambda: None)


# -- at decoration --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("expires", NAN, "expires must be a positive, finite"),
        ("expires", INF, "expires must be a positive, finite"),
        ("expires", -5, "expires must be a positive, finite"),
        ("expires", "soon", "expires must be seconds from now or a datetime"),
        ("time_limit", INF, "time_limit must be a positive, finite"),
        ("soft_time_limit", NAN, "soft_time_limit must be a positive, finite"),
        ("default_retry_delay", NAN, "default_retry_delay must be a finite"),
        ("default_retry_delay", -1, "default_retry_delay must be a finite"),
        ("retry_backoff", NAN, "retry_backoff must be a positive, finite"),
        ("retry_backoff_max", INF, "retry_backoff_max must be a positive, finite"),
        ("rate_limit", NAN, "not a rate"),
        ("rate_limit", INF, "not a rate"),
        ("rate_limit", "nan/s", "not a rate"),
        ("rate_limit", "-1/s", "not a rate"),
        ("rate_limit", "inf/m", "not a rate"),
        ("per_worker_rate_limit", "-5/h", "not a rate"),
    ],
)
def test_bad_task_options_are_refused_at_decoration(
    app: Conveyor, option: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        app.task(name="t.bad", **{option: value})(lambda: None)


def test_bad_seconds_in_settings_are_refused(app: Conveyor) -> None:
    for name in ("task_time_limit", "visibility_timeout", "broker_retry_budget"):
        for value in (NAN, INF, -1.0):
            with pytest.raises(ConfigurationError, match=name):
                app.conf.update({name: value})


# -- beat_schedule --------------------------------------------------------------------------
@pytest.mark.parametrize("option", ["expires", "time_limit", "soft_time_limit"])
@pytest.mark.parametrize("value", BAD_SECONDS)
def test_bad_seconds_in_beat_schedule_options_are_refused(
    app: Conveyor, option: str, value: float
) -> None:
    entry = {"task": "t.add", "schedule": 60, "options": {option: value}}
    with pytest.raises(ConfigurationError, match=option):
        app.conf.beat_schedule = {"e": entry}


@pytest.mark.parametrize("name", ["poll\nnow", "bell\x07", "n" * 201])
def test_beat_entry_names_are_printable_and_bounded(app: Conveyor, name: str) -> None:
    with pytest.raises(ConfigurationError, match="entry name must be printable"):
        app.conf.beat_schedule = {name: {"task": "t.add", "schedule": 60}}


# -- nothing reaches the broker, on every backend --------------------------------------------
@pytest.fixture(params=services.BACKENDS)
def any_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conveyor]:
    tag = f"bounds_{uuid.uuid4().hex[:10]}"
    url = services.backend_url(request.param, tag, tmp_path)
    app = Conveyor("t", broker=url, set_as_current=False)

    @app.task(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    yield app
    services.drop_keys(app.broker)
    app.close()


def test_refused_calls_store_nothing_on_any_backend(any_backend: Conveyor) -> None:
    add = add_of(any_backend)
    refused: list[dict[str, Any]] = [
        {"countdown": NAN},
        {"countdown": -1},
        {"expires": INF},
        {"time_limit": NAN},
        {"queue": "a\nb"},
        {"task_id": "id\nwith newline"},
        {"task_id": "x" * 256},
    ]
    for options in refused:
        with pytest.raises(ConfigurationError):
            add.apply_async((1, 2), **options)
    kept = add.apply_async((1, 2), countdown=0, task_id="kept")
    stored = any_backend.broker.list_messages("celery")
    assert [m.envelope.id for m in stored] == [kept.id]
