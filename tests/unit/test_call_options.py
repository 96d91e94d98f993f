"""Celery's apply_async and @task options: the call-time argument check (typing), serializer,
ignore_result per call, shadow, compression, exchange/routing_key, retry/retry_policy, and
retry_kwargs of autoretry."""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conveyor import Conveyor, Task
from conveyor.calling import publish_budget, queue_for
from conveyor.errors import BackendUnavailable, ConfigurationError
from conveyor.guard import Guard, budget_for
from conveyor.message import compress_body, decode_message
from conveyor.options import TaskOptions
from conveyor.request import request_for
from conveyor.retry import autoretry_limit, backoff_delay
from conveyor.routing import Exchange, Queue
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.worker.executor import RunKind, execute

# -- typing: the arguments are checked at the call ----------------------------------------


def test_a_call_missing_an_argument_raises_type_error_at_the_call(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match=r"add\(x, y\): missing a required argument"):
        add.delay(8)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        add.apply_async((1, 2), {"z": 3})
    with pytest.raises(TypeError, match="too many positional arguments"):
        add.delay(1, 2, 3)
    assert mem_app.broker.list_messages(mem_app.conf.settings.task_default_queue) == []
    add.delay(1, y=2)  # what the function takes is sent


def test_a_bound_task_is_checked_without_its_self(mem_app: Conveyor) -> None:
    @mem_app.task(bind=True)
    def hello(self: Task, who: str, *, loud: bool = False) -> str:
        return who

    hello.delay("you", loud=True)
    with pytest.raises(TypeError, match="missing a required argument: 'who'"):
        hello.delay()


def test_typing_false_sends_unchecked_and_the_worker_fails_the_call(mem_app: Conveyor) -> None:
    @mem_app.task(typing=False)
    def add(x: int, y: int) -> int:
        return x + y

    res = add.delay(8)
    solo_worker(mem_app).run_until_idle()
    assert res.state == TaskState.FAILURE
    with pytest.raises(TypeError):
        res.get(timeout=1)


def test_varargs_functions_take_anything(mem_app: Conveyor) -> None:
    @mem_app.task
    def anything(*args: Any, **kwargs: Any) -> int:
        return len(args) + len(kwargs)

    anything.delay(1, 2, a=3)


# -- serializer ---------------------------------------------------------------------------


def test_json_is_the_one_serializer_and_pickle_is_refused_saying_why(mem_app: Conveyor) -> None:
    @mem_app.task(serializer="json")
    def echo(x: int) -> int:
        return x

    echo.apply_async((1,), serializer="json")
    with pytest.raises(ConfigurationError, match=r"JSON only.*pickle would let anyone"):
        echo.apply_async((1,), serializer="pickle")
    with pytest.raises(ConfigurationError, match="serializer='yaml'"):
        mem_app.task(serializer="yaml")(lambda: None)


# -- ignore_result per call -----------------------------------------------------------------


def test_ignore_result_on_one_call_stores_nothing_for_it(mem_app: Conveyor) -> None:
    @mem_app.task
    def value() -> int:
        return 42

    ignored = value.apply_async(ignore_result=True)
    kept = value.apply_async()
    solo_worker(mem_app).run_until_idle()
    assert kept.get(timeout=1) == 42
    assert ignored.state == TaskState.PENDING


def test_ignore_result_false_on_a_call_overrides_the_task(mem_app: Conveyor) -> None:
    @mem_app.task(ignore_result=True)
    def value() -> int:
        return 7

    kept = value.apply_async(ignore_result=False)
    dropped = value.apply_async()
    solo_worker(mem_app).run_until_idle()
    assert kept.get(timeout=1) == 7
    assert dropped.state == TaskState.PENDING


def test_ignore_result_in_eager_mode(mem_app: Conveyor) -> None:
    mem_app.conf.task_always_eager = True

    @mem_app.task
    def value() -> int:
        return 3

    assert value.apply_async(ignore_result=True).state == TaskState.PENDING
    assert value.apply_async().get(timeout=1) == 3


# -- shadow ---------------------------------------------------------------------------------


def test_shadow_names_the_call_in_results_and_logs_while_the_task_runs(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(bind=True)
    def run_report(self: Task, which: str) -> str:
        assert self.request.shadow == f"report.{which}"
        assert self.request.task == run_report.name  # self.request still belongs to it
        return which

    res = run_report.apply_async(("daily",), shadow="report.daily")
    with caplog.at_level(logging.INFO, logger="conveyor"):
        solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == "daily"
    assert res.name == "report.daily"
    assert f"task report.daily[{res.id}] success" in caplog.text


def test_shadow_must_be_a_name(mem_app: Conveyor) -> None:
    @mem_app.task
    def noop() -> None: ...

    with pytest.raises(ConfigurationError, match="shadow must be a non-empty name"):
        noop.apply_async(shadow=5)  # type: ignore[arg-type]
    res = noop.apply_async(shadow="")  # empty: no shadow, as in Celery
    solo_worker(mem_app).run_until_idle()
    assert res.name == noop.name


# -- compression ----------------------------------------------------------------------------


def test_a_gzip_compressed_call_is_stored_compressed_and_runs(mem_app: Conveyor) -> None:
    @mem_app.task
    def length(text: str) -> int:
        return len(text)

    res = length.apply_async(("abc" * 5000,), compression="gzip")
    stored = mem_app.broker.list_messages(mem_app.conf.settings.task_default_queue)[0]
    body = stored.envelope.body
    assert body[:2] == b"\x1f\x8b" and len(body) < 1000
    assert decode_message(body).args == ("abc" * 5000,)
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == 15000


def test_unknown_compression_is_refused_naming_the_supported_ones(mem_app: Conveyor) -> None:
    @mem_app.task
    def noop() -> None: ...

    with pytest.raises(ConfigurationError, match=r"'gzip' \(also given as 'zlib'\) or 'zstd'"):
        noop.apply_async(compression="bzip2")


def test_zlib_as_celerys_docs_write_it_is_sent_as_gzip(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: str, y: str) -> int:
        return len(x + y)

    res = add.apply_async(("2" * 1000, "2"), compression="zlib")
    assert _body(mem_app, res)[:2] == b"\x1f\x8b"
    assert compress_body(b'{"a":1}', "gzip") == b'{"a":1}'  # kept when gzip would grow it
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == 1001


# -- exchange / routing_key -----------------------------------------------------------------


def test_routing_key_names_a_queue_as_in_celerys_default_topology(mem_app: Conveyor) -> None:
    settings = mem_app.conf.settings
    assert queue_for(settings, None, None, "hipri") == "hipri"
    assert queue_for(settings, None, "hipri", None) == "hipri"
    assert queue_for(settings, None, Exchange("hipri"), "hipri") == "hipri"
    assert queue_for(settings, "given", "other", "other") == "given"  # queue= wins
    assert queue_for(settings, None, "", None) is None  # AMQP's default exchange
    assert queue_for(settings, None, settings.task_default_queue, None) is None


def test_routing_key_picks_the_declared_queue_bound_with_it(mem_app: Conveyor) -> None:
    mem_app.conf.task_queues = (
        Queue("default"),
        Queue("feeds", Exchange("media"), routing_key="media.feed"),
        Queue("images", Exchange("media"), routing_key="media.image"),
    )

    @mem_app.task
    def fetch() -> None: ...

    fetch.apply_async(exchange="media", routing_key="media.image")
    fetch.apply_async(routing_key="media.feed")
    stats = {s.queue: s for s in mem_app.broker.queue_stats()}
    assert set(stats) >= {"images", "feeds"}


def test_routing_key_and_exchange_are_checked(mem_app: Conveyor) -> None:
    with pytest.raises(ConfigurationError, match="routing_key must be a queue name"):
        queue_for(mem_app.conf.settings, None, None, "")
    with pytest.raises(ConfigurationError, match="exchange must be a name"):
        queue_for(mem_app.conf.settings, None, 5, None)


# -- retry / retry_policy: the producer's budget --------------------------------------------


def test_retry_and_retry_policy_become_a_budget_in_seconds() -> None:
    assert publish_budget(None, None) is None  # broker_retry_budget
    assert publish_budget(True, None) is None
    assert publish_budget(False, {"max_retries": 9}) == 0.0
    # Celery's defaults: 3 tries, waits 0, 0.2, 0.2
    assert publish_budget(True, {}) == pytest.approx(0.4)
    policy = {"max_retries": 4, "interval_start": 1, "interval_step": 1, "interval_max": 2.5}
    assert publish_budget(True, policy) == pytest.approx(1 + 2 + 2.5 + 2.5)
    assert publish_budget(True, {"max_retries": None}) == math.inf
    assert publish_budget(True, {"timeout": 3}) == 3.0


def test_a_retry_policy_celery_does_not_have_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown key.*'max_retry'"):
        publish_budget(True, {"max_retry": 3})
    with pytest.raises(ConfigurationError, match="retry_errors is not supported"):
        publish_budget(True, {"retry_errors": (OSError,)})
    documented = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2}
    assert publish_budget(True, {**documented, "interval_max": 0.2, "retry_errors": None}) == (
        pytest.approx(0.4)
    )
    with pytest.raises(ConfigurationError, match="retry must be True or False"):
        publish_budget("yes", None)  # type: ignore[arg-type]


def test_a_call_budget_of_zero_gives_up_at_the_first_transient_error() -> None:
    guard = Guard("broker at test", "redis://x", (ConnectionError,), budget=10.0)
    tries: list[int] = []

    def down() -> None:
        tries.append(1)
        raise ConnectionError("refused")

    with budget_for(0.0), pytest.raises(BackendUnavailable, match="did not answer"):
        guard.call(down)
    assert len(tries) == 1
    tries.clear()
    with budget_for(0.2), pytest.raises(BackendUnavailable):
        guard.call(down)
    assert 2 <= len(tries) <= 5  # retried within 0.2 s, then gave up
    assert guard.budget == 10.0  # the guard's own budget is untouched


# -- retry_kwargs ---------------------------------------------------------------------------


def test_retry_kwargs_set_the_autoretry_countdown_and_limit(mem_app: Conveyor) -> None:
    @mem_app.task(autoretry_for=(OSError,), retry_kwargs={"max_retries": 5, "countdown": 2})
    def fetch() -> None:
        raise OSError("down")

    opts = fetch.options
    assert backoff_delay(opts, 0) == 2.0 and autoretry_limit(opts) == 5
    message = decode_message(_body(mem_app, fetch.delay()))
    result = execute(fetch, message, request_for(message, "test", 1))
    assert (result.kind, result.countdown, result.retries) == (RunKind.RETRY, 2.0, 1)
    last = message.__class__(id=message.id, task=message.task, retries=5)
    assert execute(fetch, last, request_for(last, "test", 1)).kind is RunKind.FAILURE


def test_retry_backoff_wins_over_the_countdown_of_retry_kwargs() -> None:
    opts = TaskOptions(retry_backoff=3, retry_jitter=False, retry_kwargs={"countdown": 100})
    assert backoff_delay(opts, 1) == 6.0


def test_retry_kwargs_celery_passes_that_conveyor_has_not_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"'eta' not supported.*max_retries and countdown"):
        TaskOptions(retry_kwargs={"eta": 5})
    with pytest.raises(ConfigurationError, match="retry_kwargs must be a dict"):
        TaskOptions(retry_kwargs=[("countdown", 1)])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_retries must be an integer"):
        TaskOptions(retry_kwargs={"max_retries": 1.5})


def _body(app: Conveyor, res: Any) -> bytes:
    for stored in app.broker.list_messages(app.conf.settings.task_default_queue):
        if stored.envelope.id == res.id:
            return stored.envelope.body
    raise AssertionError(f"{res.id} is not in the broker")


# -- Celery's other publishing options -------------------------------------------------------


def test_harmless_publishing_options_are_accepted(mem_app: Conveyor) -> None:
    @mem_app.task
    def login(user: str, password: str) -> str:
        return user

    res = login.apply_async(
        ("ann", "secret"), delivery_mode="persistent", argsrepr="('ann', '***')"
    )
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == "ann"


def test_argsrepr_is_refused_when_arguments_are_stored(mem_app: Conveyor) -> None:
    mem_app.conf.result_extended = True

    @mem_app.task
    def login(user: str, password: str) -> None: ...

    with pytest.raises(ConfigurationError, match="stores the arguments as given"):
        login.apply_async(("ann", "secret"), kwargsrepr="{}")


def test_publishing_options_without_a_meaning_here_are_refused_saying_why(
    mem_app: Conveyor,
) -> None:
    @mem_app.task
    def noop() -> None: ...

    with pytest.raises(ConfigurationError, match="always keep messages"):
        noop.apply_async(delivery_mode=1)
    with pytest.raises(ConfigurationError, match="no producer pools"):
        noop.apply_async(producer=object())
    with pytest.raises(ConfigurationError, match="give expires="):
        noop.apply_async(expiration=10)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'countdwn'.*countdown"):
        noop.apply_async(countdwn=1)


def test_compression_comes_from_the_call_then_the_task_then_task_compression(
    mem_app: Conveyor,
) -> None:
    @mem_app.task(compression="zlib")
    def packed(text: str) -> int:
        return len(text)

    @mem_app.task
    def plain(text: str) -> int:
        return len(text)

    big = ("x" * 2000,)
    assert _body(mem_app, packed.apply_async(big))[:2] == b"\x1f\x8b"
    assert _body(mem_app, plain.apply_async(big))[:1] == b"{"
    mem_app.conf.task_compression = "gzip"
    assert _body(mem_app, plain.apply_async(big))[:2] == b"\x1f\x8b"
    with pytest.raises(ConfigurationError, match="task_compression='lzma'"):
        mem_app.conf.task_compression = "lzma"
    with pytest.raises(ConfigurationError, match="compression='brotli'"):
        mem_app.task(compression="brotli")(lambda: None)
    assert packed.compression == "zlib"


class NamedByArgument(Task):
    def shadow_name(self, args: Any, kwargs: Any, options: Any) -> str | None:
        return f"report.{args[0]}"


def test_a_shadow_name_method_names_calls_given_no_shadow(mem_app: Conveyor) -> None:
    @mem_app.task(base=NamedByArgument)
    def report(which: str) -> str:
        return which

    named = report.delay("weekly")
    given = report.apply_async(("daily",), shadow="explicit")
    solo_worker(mem_app).run_until_idle()
    assert (named.name, given.name) == ("report.weekly", "explicit")


def test_send_task_takes_celerys_options_too(mem_app: Conveyor) -> None:
    @mem_app.task(name="tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    res = mem_app.send_task(
        "tasks.add", args=[2, 2], routing_key="hipri", shadow="add.by_name", ignore_result=False
    )
    assert _body_in(mem_app, "hipri", res.id)
    solo_worker(mem_app, queues=("hipri",)).run_until_idle()
    assert (res.get(timeout=1), res.name) == (4, "add.by_name")
    with pytest.raises(ConfigurationError, match="JSON only"):
        mem_app.send_task("tasks.add", args=[1, 2], serializer="pickle")


def _body_in(app: Conveyor, queue: str, task_id: str) -> bytes | None:
    found = [m for m in app.broker.list_messages(queue) if m.envelope.id == task_id]
    return found[0].envelope.body if found else None


# -- Celery's retry() keywords and dont_autoretry_for ------------------------------------------


def test_retry_with_eta_and_the_calls_own_arguments(mem_app: Conveyor, fake_clock: Any) -> None:
    @mem_app.task(bind=True)
    def again(self: Task, n: int) -> int:
        if self.request.retries == 0:
            when = datetime.fromtimestamp(fake_clock.now(), timezone.utc) + timedelta(seconds=30)
            raise self.retry(eta=when, args=(n,), kwargs={})
        return n

    message = decode_message(_body(mem_app, again.delay(5)))
    result = execute(again, message, request_for(message, "test", 1))
    assert result.kind is RunKind.RETRY and result.countdown == pytest.approx(30.0)


def test_retry_options_conveyor_has_not_fail_the_call_saying_why(mem_app: Conveyor) -> None:
    cases = [
        ({"args": (2,)}, "other args/kwargs"),
        ({"throw": False}, "throw=False"),
        ({"queue": "other"}, r"retry\(queue=\) is not supported"),
        ({"countdown": 1, "eta": datetime.now()}, "not both"),
    ]
    for extra, why in cases:

        @mem_app.task(bind=True, name=f"t.retry_{len(why)}")
        def asks(self: Task, n: int, extra: Any = extra) -> None:
            raise self.retry(**extra)

        message = decode_message(_body(mem_app, asks.delay(1)))
        result = execute(asks, message, request_for(message, "test", 1))
        assert result.kind is RunKind.FAILURE and result.error is not None
        assert result.error.type == "ConfigurationError"
        assert re.search(why, result.error.message), result.error.message


def test_dont_autoretry_for_excludes_exceptions_from_autoretry(mem_app: Conveyor) -> None:
    @mem_app.task(autoretry_for=(Exception,), dont_autoretry_for=(ValueError,))
    def picky(kind: str) -> None:
        raise (ValueError if kind == "value" else OSError)(kind)

    for kind, expected in (("value", RunKind.FAILURE), ("os", RunKind.RETRY)):
        message = decode_message(_body(mem_app, picky.delay(kind)))
        assert execute(picky, message, request_for(message, "test", 1)).kind is expected
    assert picky.dont_autoretry_for == (ValueError,)
    with pytest.raises(ConfigurationError, match="dont_autoretry_for must be a tuple"):
        TaskOptions(dont_autoretry_for=ValueError)  # type: ignore[arg-type]


def test_a_soft_limit_over_the_hard_one_is_refused_at_the_call_as_in_celery(
    mem_app: Conveyor,
) -> None:
    @mem_app.task(time_limit=10, soft_time_limit=20)
    def odd() -> None: ...

    with pytest.raises(ValueError, match=r"soft_time_limit \(20s\) must be less than or equal"):
        odd.delay()


def test_the_argument_check_counts_positional_calls_and_binds_the_rest() -> None:
    from conveyor.arguments import parameters_of

    def f(a: int, b: int = 2, *, c: int, d: int = 4) -> None: ...

    params = parameters_of(f, bound=False)
    assert params is not None and (params.least, params.most, params.simple) == (1, 2, False)
    params.check("f", (1,), {"c": 3})
    with pytest.raises(
        TypeError, match=r"f\(a, b=2, \*, c, d=4\): missing a required argument: 'c'"
    ):
        params.check("f", (1, 2), {})

    def g(self: object, *args: Any, **kwargs: Any) -> None: ...

    bound = parameters_of(g, bound=True)
    assert bound is not None and (bound.least, bound.most, bound.simple) == (0, None, True)
    bound.check("g", (1, 2, 3), {"x": 1})
    assert parameters_of(object(), bound=False) is None  # type: ignore[arg-type]


# -- track_started and throws ----------------------------------------------------------------


def test_track_started_per_task_wins_over_the_setting(mem_app: Conveyor) -> None:
    from conveyor.worker.policy import policy_for

    @mem_app.task(track_started=False)
    def quiet() -> None: ...

    @mem_app.task
    def plain() -> None: ...

    assert mem_app.conf.settings.task_track_started is False  # Celery's default
    mem_app.conf.task_track_started = True
    settings = mem_app.conf.settings
    assert policy_for(quiet, settings).track_started is False
    assert policy_for(plain, settings).track_started is True
    mem_app.conf.task_track_started = False
    assert policy_for(plain, mem_app.conf.settings).track_started is False
    assert quiet.track_started is False


class Expected(Exception):
    pass


def test_failures_a_task_throws_are_logged_at_info(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(throws=(Expected,))
    def lookup(kind: str) -> None:
        raise (Expected if kind == "expected" else KeyError)(kind)

    expected, other = lookup.delay("expected"), lookup.delay("other")
    with caplog.at_level(logging.INFO, logger="conveyor"):
        solo_worker(mem_app).run_until_idle()
    assert expected.state == other.state == TaskState.FAILURE
    levels = {
        r.task_id: r.levelname  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "task_id", None) in (expected.id, other.id)
    }
    assert levels == {expected.id: "INFO", other.id: "ERROR"}
    with pytest.raises(ConfigurationError, match="throws must be a tuple"):
        TaskOptions(throws=KeyError)  # type: ignore[arg-type]


def test_store_errors_even_if_ignored_keeps_failures_only(mem_app: Conveyor) -> None:
    @mem_app.task(ignore_result=True, store_errors_even_if_ignored=True)
    def sometimes(fail: bool) -> str:
        if fail:
            raise LookupError("kept")
        return "dropped"

    ok, bad = sometimes.delay(False), sometimes.delay(True)
    solo_worker(mem_app).run_until_idle()
    assert ok.state == TaskState.PENDING
    assert bad.state == TaskState.FAILURE


def test_a_call_sent_with_ignore_result_gets_none_at_once(mem_app: Conveyor) -> None:
    @mem_app.task
    def value() -> int:
        return 1

    res = value.apply_async(ignore_result=True)
    assert res.ignored and res.get(timeout=0.1) is None
