"""Signals (conveyor.signals): the Signal class, the task signals the executor sends, and task
loggers. Driven with the solo worker on the memory broker; no sleeps."""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Ignore, Reject
from conveyor import signals as sig
from conveyor.cli.context import LOG_FORMAT, setup_logging
from conveyor.clock import FakeClock
from conveyor.errors import SoftTimeLimitExceeded, TimeLimitExceeded
from conveyor.log import UNKNOWN, get_task_logger
from conveyor.logformat import ENV_FILE, ENV_FORMAT, ENV_LEVEL
from conveyor.request import Request
from conveyor.signals import ExceptionInfo, Signal
from conveyor.states import TaskState
from conveyor.testing import solo_worker
from conveyor.utils import log as celery_log

Calls = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def heard() -> Iterator[Calls]:
    """Connects a recorder to each task signal (strongly; disconnected after the test)."""
    calls: Calls = []
    names = ["task_prerun", "task_success", "task_failure", "task_retry", "task_postrun"]
    recorders: dict[str, Callable[..., None]] = {}
    for name in names:

        def record(name: str = name, **kwargs: Any) -> None:
            calls.append((name, kwargs))

        recorders[name] = record
        getattr(sig, name).connect(record, weak=False)
    yield calls
    for name, record in recorders.items():
        assert getattr(sig, name).disconnect(record)


# -- the Signal class ---------------------------------------------------------------------


def test_connect_as_a_call_a_bare_decorator_and_a_decorator_with_arguments() -> None:
    s = Signal("demo", ("x",))
    sender = object()

    def one(**kwargs: Any) -> str:
        return "one"

    assert s.connect(one) is one

    @s.connect
    def two(**kwargs: Any) -> str:
        return "two"

    @s.connect(sender=sender, dispatch_uid="three")
    def three(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    assert callable(two) and two() == "two"  # the decorators return the receiver unchanged
    responses = s.send(sender, x=1)
    assert [(r.__name__, v) for r, v in responses[:2]] == [("one", "one"), ("two", "two")]
    assert responses[2] == (three, {"signal": s, "sender": sender, "x": 1})
    assert [r for r, _ in s.send(None, x=2)] == [one, two]  # three listens to `sender` only

    def four(**kwargs: Any) -> str:
        return "four"

    s.connect(four, sender)  # the sender may be given by position, as in Celery
    assert s.live_receivers(sender) == [one, two, three, four]
    assert s.live_receivers(None) == [one, two]


def test_sender_filtering_by_object_and_by_task_name() -> None:
    s = Signal("demo")
    a, b = object(), object()
    got: list[object] = []
    s.connect(lambda sender, **kw: got.append(("a", sender)), sender=a, weak=False)
    name = "".join(["proj.", "add"])  # an equal string that is not the same object
    s.connect(lambda sender, **kw: got.append(("name", sender)), sender=name, weak=False)
    s.send(a)
    s.send(b)
    s.send("proj.add")
    assert got == [("a", a), ("name", "proj.add")]


def test_a_raising_receiver_is_logged_by_name_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Signal("demo")
    seen: list[str] = []

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    def after(**kwargs: Any) -> str:
        seen.append("after")
        return "ok"

    s.connect(broken)
    s.connect(after)
    with caplog.at_level(logging.ERROR, logger="conveyor.signals"):
        responses = s.send(None)
    assert seen == ["after"]
    (r1, v1), (r2, v2) = responses
    assert r1 is broken and isinstance(v1, RuntimeError) and (r2, v2) == (after, "ok")
    (record,) = caplog.records
    assert "broken" in record.getMessage() and "demo" in record.getMessage()
    assert record.exc_info is not None  # with its traceback


def test_weak_receivers_go_with_their_objects_and_weak_false_keeps_them() -> None:
    s = Signal("demo")

    class Holder:
        def method(self, **kwargs: Any) -> str:
            return "method"

    holder = Holder()
    s.connect(holder.method)  # a bound method: weakly held, lives as long as `holder`

    def plain(**kwargs: Any) -> str:
        return "plain"

    s.connect(plain)
    s.connect(lambda **kw: "strong", weak=False)
    assert [v for _, v in s.send(None)] == ["method", "plain", "strong"]
    del holder, plain
    gc.collect()
    assert [v for _, v in s.send(None)] == ["strong"]
    s.connect(lambda **kw: "again", weak=False)  # pruning the dead ones keeps the live ones
    assert [v for _, v in s.send(None)] == ["strong", "again"]


def test_duplicates_dispatch_uid_and_disconnect() -> None:
    s = Signal("demo")

    def r(**kwargs: Any) -> int:
        return 1

    def r2(**kwargs: Any) -> int:
        return 2

    s.connect(r)
    s.connect(r)  # the same receiver for the same sender: once
    s.connect(r2, dispatch_uid="uid")
    s.connect(r, dispatch_uid="uid")  # that uid is taken: ignored, as in Celery
    assert s.receivers == [r, r2]
    assert s.disconnect(dispatch_uid="uid") is True
    assert s.disconnect(r) is True
    assert s.disconnect(r) is False
    assert s.send(None) == []
    with pytest.raises(TypeError, match="receiver or a dispatch_uid"):
        s.disconnect()


def test_refusals_say_what_to_do() -> None:
    s = Signal("demo")

    def no_kwargs(sender: object) -> None:
        return None

    with pytest.raises(ValueError, match=r"\*\*kwargs"):
        s.connect(no_kwargs)
    with pytest.raises(TypeError, match="callable"):
        s.connect(42)  # type: ignore[call-overload]
    assert s.receivers == []


def test_a_receiver_may_disconnect_itself_while_the_signal_is_sent() -> None:
    s = Signal("demo")
    calls: list[int] = []

    def once(**kwargs: Any) -> None:
        calls.append(1)
        s.disconnect(once)

    s.connect(once)
    s.send(None)
    s.send(None)
    assert calls == [1]


def test_connecting_and_sending_from_many_threads_loses_no_receiver() -> None:
    s = Signal("demo")
    per_thread, threads = 200, 6
    receivers: list[list[Callable[..., int]]] = [
        [(lambda i=i, **kw: i) for i in range(per_thread)] for _ in range(threads)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def sender() -> None:
        while not stop.is_set():
            try:
                s.send(None)
            except BaseException as exc:
                errors.append(exc)

    def connector(mine: list[Callable[..., int]]) -> None:
        for r in mine:
            s.connect(r, weak=False)
        for r in mine[::2]:
            assert s.disconnect(r)

    sending = threading.Thread(target=sender)
    sending.start()
    workers = [threading.Thread(target=connector, args=(m,)) for m in receivers]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    sending.join()
    assert errors == []
    expected = {id(r) for mine in receivers for r in mine[1::2]}
    assert {id(r) for r in s.live_receivers(None)} == expected
    assert len(s.send(None)) == threads * per_thread // 2


DOCUMENTED = {
    "before_task_publish": (
        "body",
        "exchange",
        "routing_key",
        "headers",
        "properties",
        "declare",
        "retry_policy",
    ),
    "after_task_publish": ("headers", "body", "exchange", "routing_key"),
    "task_received": ("request",),
    "task_prerun": ("task_id", "task", "args", "kwargs"),
    "task_postrun": ("task_id", "task", "args", "kwargs", "retval", "state"),
    "task_success": ("result",),
    "task_failure": ("task_id", "exception", "args", "kwargs", "traceback", "einfo"),
    "task_retry": ("request", "reason", "einfo"),
    "task_revoked": ("request", "terminated", "signum", "expired"),
    "task_rejected": ("message", "exc"),
    "task_unknown": ("name", "id", "message", "exc"),
    "worker_init": (),
    "worker_ready": (),
    "worker_shutting_down": ("sig", "how", "exitcode"),
    "worker_shutdown": (),
    "worker_process_init": (),
    "worker_process_shutdown": ("pid", "exitcode"),
    "beat_init": (),
    "heartbeat_sent": (),
    "setup_logging": ("loglevel", "logfile", "format", "colorize"),
    "after_setup_logger": ("logger", "loglevel", "logfile", "format", "colorize"),
    "after_setup_task_logger": ("logger", "loglevel", "logfile", "format", "colorize"),
}


def test_every_celery_signal_exists_with_its_documented_arguments() -> None:
    for name, args in DOCUMENTED.items():
        signal = getattr(sig, name)
        assert isinstance(signal, Signal) and signal.name == name
        assert signal.providing_args == args, name
    assert set(DOCUMENTED) | {"Signal", "ExceptionInfo"} == set(sig.__all__)


# -- task signals, sent by the executor ----------------------------------------------------


def _args_of(calls: Calls, name: str) -> dict[str, Any]:
    (found,) = [kw for n, kw in calls if n == name]
    assert set(found) - {"signal", "sender"} == set(getattr(sig, name).providing_args)
    return found


def test_a_success_sends_prerun_success_postrun_with_the_documented_arguments(
    mem_app: Conveyor, heard: Calls
) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    res = add.delay(2, 3)
    solo_worker(mem_app).run_until_idle()
    assert [n for n, _ in heard] == ["task_prerun", "task_success", "task_postrun"]
    pre = _args_of(heard, "task_prerun")
    assert (pre["sender"], pre["task_id"], pre["task"], pre["args"], pre["kwargs"]) == (
        add,
        res.id,
        add,
        (2, 3),
        {},
    )
    assert _args_of(heard, "task_success")["result"] == 5
    post = _args_of(heard, "task_postrun")
    assert (post["task_id"], post["retval"], post["state"], post["args"]) == (
        res.id,
        5,
        "SUCCESS",
        (2, 3),
    )


def test_a_failure_sends_task_failure_with_exception_traceback_and_einfo(
    mem_app: Conveyor, heard: Calls
) -> None:
    @mem_app.task
    def charge(amount: int, currency: str = "EUR") -> None:
        raise KeyError("card")

    res = charge.delay(7, currency="USD")
    solo_worker(mem_app).run_until_idle()
    assert [n for n, _ in heard] == ["task_prerun", "task_failure", "task_postrun"]
    failed = _args_of(heard, "task_failure")
    exc = failed["exception"]
    assert isinstance(exc, KeyError) and failed["sender"] is charge
    assert (failed["task_id"], failed["args"], failed["kwargs"]) == (
        res.id,
        (7,),
        {"currency": "USD"},
    )
    assert failed["traceback"] is exc.__traceback__ and failed["traceback"] is not None
    einfo = failed["einfo"]
    assert isinstance(einfo, ExceptionInfo) and einfo.exception is exc and einfo.type is KeyError
    assert "charge" in einfo.traceback and "KeyError" in str(einfo)
    post = _args_of(heard, "task_postrun")
    assert post["retval"] is exc and post["state"] == "FAILURE"


def test_a_retry_sends_task_retry_with_the_request_and_reason(
    mem_app: Conveyor, fake_clock: FakeClock, heard: Calls
) -> None:
    @mem_app.task(bind=True, max_retries=3)
    def flaky(self: Any) -> int:
        if self.request.retries < 1:
            raise self.retry(exc=TimeoutError("slow"), countdown=10)
        return 1

    res = flaky.delay()
    worker = solo_worker(mem_app)
    worker.run_until_idle()
    assert [n for n, _ in heard] == ["task_prerun", "task_retry", "task_postrun"]
    retry = _args_of(heard, "task_retry")
    request, reason = retry["request"], retry["reason"]
    assert isinstance(request, Request) and request.id == res.id and request.retries == 0
    assert "slow" in str(reason) and retry["einfo"].exception is reason
    assert _args_of(heard, "task_postrun")["state"] == "RETRY"
    heard.clear()
    fake_clock.advance(10)
    worker.run_until_idle()
    assert [n for n, _ in heard] == ["task_prerun", "task_success", "task_postrun"]


def test_autoretry_sends_task_retry_with_the_caught_exception(
    mem_app: Conveyor, heard: Calls
) -> None:
    @mem_app.task(autoretry_for=(ConnectionError,), max_retries=2)
    def call_api() -> None:
        raise ConnectionError("refused")

    call_api.delay()
    solo_worker(mem_app).run_until_idle()
    reason = _args_of(heard, "task_retry")["reason"]
    assert isinstance(reason, ConnectionError)


def test_reject_and_ignore_send_postrun_with_their_states(mem_app: Conveyor, heard: Calls) -> None:
    @mem_app.task
    def refuse() -> None:
        raise Reject("bad input")

    @mem_app.task
    def skip() -> None:
        raise Ignore()

    refuse.delay()
    solo_worker(mem_app).run_until_idle()
    skip.delay()
    solo_worker(mem_app).run_until_idle()
    states = [kw["state"] for n, kw in heard if n == "task_postrun"]
    assert states == ["REJECTED", "IGNORED"]
    assert [n for n, _ in heard if n in ("task_success", "task_failure", "task_retry")] == []


def test_raising_receivers_never_change_the_outcome(mem_app: Conveyor) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    task_signals = [sig.task_prerun, sig.task_success, sig.task_failure, sig.task_postrun]
    for s in task_signals:
        s.connect(broken)
    try:

        @mem_app.task
        def add(x: int, y: int) -> int:
            return x + y

        @mem_app.task
        def fail() -> None:
            raise ValueError("own error")

        ok, bad = add.delay(1, 2), fail.delay()
        solo_worker(mem_app).run_until_idle()
    finally:
        for s in task_signals:
            s.disconnect(broken)
    assert ok.get(timeout=1) == 3
    assert bad.state is TaskState.FAILURE
    assert bad.outcome is not None and bad.outcome.error is not None
    assert bad.outcome.error.type == "ValueError"


def test_a_receiver_for_one_task_hears_only_that_task(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    @mem_app.task
    def mul(x: int, y: int) -> int:
        return x * y

    results: list[object] = []

    @sig.task_success.connect(sender=add)
    def on_add(result: object, **kwargs: Any) -> None:
        results.append(result)

    try:
        add.delay(2, 3)
        mul.delay(2, 3)
        solo_worker(mem_app).run_until_idle()
    finally:
        sig.task_success.disconnect(on_add, sender=add)
    assert results == [5]


def test_eager_calls_send_the_task_signals_in_the_caller(mem_app: Conveyor, heard: Calls) -> None:
    mem_app.conf.task_always_eager = True

    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.delay(1, 1).get(timeout=1) == 2
    assert [n for n, _ in heard] == ["task_prerun", "task_success", "task_postrun"]


# -- task loggers --------------------------------------------------------------------------


def test_records_from_a_task_logger_carry_the_running_task_id_and_name(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    logger = get_task_logger("tests.signals.tasklog")
    assert celery_log.get_task_logger("tests.signals.tasklog") is logger
    assert len(logger.filters) == 1  # installed once however often it is asked for
    assert celery_log.get_logger("tests.signals.plain") is logging.getLogger("tests.signals.plain")

    @mem_app.task(name="proj.work")
    def work() -> None:
        logger.warning("inside")

    res = work.delay()
    with caplog.at_level(logging.INFO, logger="tests.signals.tasklog"):
        solo_worker(mem_app).run_until_idle()
        logger.warning("outside")
    inside, outside = [r for r in caplog.records if r.name == "tests.signals.tasklog"]
    assert (inside.task_id, inside.task_name) == (res.id, "proj.work")  # type: ignore[attr-defined]
    assert (outside.task_id, outside.task_name) == (UNKNOWN, UNKNOWN)  # type: ignore[attr-defined]


def test_a_time_limit_arriving_in_a_receiver_is_not_swallowed(mem_app: Conveyor) -> None:
    """Time limits are raised asynchronously into the running thread, receivers included: the
    limit must still end the run (here the receiver raises it, as the limit timer would)."""
    s = Signal("demo")

    def cut_off(**kwargs: Any) -> None:
        raise SoftTimeLimitExceeded("soft time limit exceeded")

    s.connect(cut_off)
    with pytest.raises(SoftTimeLimitExceeded):
        s.send(None)

    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    def hard_limit(**kwargs: Any) -> None:
        raise TimeLimitExceeded("time limit exceeded")

    sig.task_prerun.connect(hard_limit, sender=add)
    try:
        res = add.delay(1, 2)
        solo_worker(mem_app).run_until_idle()
    finally:
        sig.task_prerun.disconnect(hard_limit, sender=add)
    assert res.state is TaskState.FAILURE
    assert res.outcome is not None and res.outcome.error is not None
    assert res.outcome.error.type == "TimeLimitExceeded"


# -- logging signals, sent by the command line -----------------------------------------------


def test_a_setup_logging_receiver_takes_over_logging_configuration(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    got: list[dict[str, Any]] = []

    def configure(**kwargs: Any) -> None:
        got.append(kwargs)

    sig.setup_logging.connect(configure)
    try:
        setup_logging("info", str(tmp_path / "never.log"))
    finally:
        sig.setup_logging.disconnect(configure)
    assert (list(root.handlers), root.level) == before  # left alone, as in Celery
    assert not (tmp_path / "never.log").exists()
    (kwargs,) = got
    assert (kwargs["loglevel"], kwargs["logfile"], kwargs["colorize"]) == (
        logging.INFO,
        str(tmp_path / "never.log"),
        False,
    )
    assert kwargs["format"] == LOG_FORMAT


def test_after_setup_logger_receives_the_configured_root_logger(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    got: list[dict[str, Any]] = []

    def after(**kwargs: Any) -> None:
        got.append(kwargs)

    def after_task(**kwargs: Any) -> None:
        got.append(kwargs)

    sig.after_setup_logger.connect(after)
    sig.after_setup_task_logger.connect(after_task)
    try:
        setup_logging("warning", str(tmp_path / "w.log"))
        kwargs, task_kwargs = got
        assert kwargs["logger"] is root and kwargs["loglevel"] == logging.WARNING
        assert isinstance(root.handlers[0], logging.FileHandler)
        # then the task loggers' common parent, which a task logger of a module hangs under
        assert task_kwargs["logger"] is logging.getLogger("conveyor.task")
        assert task_kwargs["loglevel"] == logging.WARNING
        assert get_task_logger("proj_tasks_module").parent is task_kwargs["logger"]
        logging.getLogger("proj_pkg")
        assert get_task_logger("proj_pkg.tasks").parent is logging.getLogger("proj_pkg")
    finally:
        sig.after_setup_logger.disconnect(after)
        sig.after_setup_task_logger.disconnect(after_task)
        for h in root.handlers:
            h.close()
        root.handlers[:] = before[0]
        root.setLevel(before[1])
        for name in (ENV_FILE, ENV_FORMAT, ENV_LEVEL):  # set for pool children; not for others
            os.environ.pop(name, None)
