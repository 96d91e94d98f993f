"""Task hooks (before_start, on_success, on_failure, on_retry, after_return): called with
Celery's arguments, in Celery's order with the task signals, by the solo worker and in eager
mode; what a raising hook does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest

from conveyor import Conveyor, Ignore, Reject, Task
from conveyor import signals as sig
from conveyor.signals import ExceptionInfo
from conveyor.states import TaskState
from conveyor.testing import solo_worker

Heard = list[tuple[Any, ...]]


class Recording(Task):
    """Records every hook call (and the running call's id, to show `self.request` is set)."""

    heard: ClassVar[Heard] = []

    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.heard.append(("before_start", task_id, tuple(args), dict(kwargs), self.request.id))

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        self.heard.append(("on_success", retval, task_id, tuple(args), dict(kwargs)))

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        self.heard.append(("on_failure", exc, task_id, tuple(args), dict(kwargs), einfo))

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        self.heard.append(("on_retry", exc, task_id, tuple(args), dict(kwargs), einfo))

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        self.heard.append(("after_return", status, retval, task_id, tuple(args), dict(kwargs)))
        assert einfo is None


@pytest.fixture
def heard() -> Iterator[Heard]:
    """Hook calls and the task signals, in one list, in the order they happened."""
    calls: Heard = []
    Recording.heard = calls
    receivers: list[tuple[sig.Signal, Callable[..., None]]] = []
    for name in ("task_prerun", "task_success", "task_failure", "task_retry", "task_postrun"):

        def record(name: str = name, **kwargs: Any) -> None:
            calls.append((f"signal:{name}",))

        signal = getattr(sig, name)
        signal.connect(record, weak=False)
        receivers.append((signal, record))
    yield calls
    for signal, record in receivers:
        signal.disconnect(record)


def names(heard: Heard) -> list[str]:
    return [str(h[0]) for h in heard]


def test_a_success_calls_before_start_on_success_after_return_in_celerys_order(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(base=Recording)
    def add(x: int, y: int) -> int:
        return x + y

    res = add.apply_async((2,), {"y": 3})
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == 5
    assert names(heard) == [
        "signal:task_prerun",
        "before_start",
        "on_success",
        "signal:task_success",
        "after_return",
        "signal:task_postrun",
    ]
    assert heard[1] == ("before_start", res.id, (2,), {"y": 3}, res.id)
    assert heard[2] == ("on_success", 5, res.id, (2,), {"y": 3})
    assert heard[4] == ("after_return", "SUCCESS", 5, res.id, (2,), {"y": 3})


def test_a_failure_calls_on_failure_with_the_exception_and_its_einfo(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(base=Recording)
    def boom(n: int) -> None:
        raise KeyError(n)

    res = boom.delay(7)
    solo_worker(mem_app).run_until_idle()
    assert res.state == TaskState.FAILURE
    assert names(heard) == [
        "signal:task_prerun",
        "before_start",
        "on_failure",
        "signal:task_failure",
        "after_return",
        "signal:task_postrun",
    ]
    _, exc, task_id, args, kwargs, einfo = heard[2]
    assert isinstance(exc, KeyError) and exc.args == (7,)
    assert (task_id, args, kwargs) == (res.id, (7,), {})
    assert einfo.exception is exc and einfo.type is KeyError
    assert "raise KeyError(n)" in einfo.traceback
    assert heard[4][:3] == ("after_return", "FAILURE", exc)


def test_a_retry_calls_on_retry_with_the_error_it_was_asked_for(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(base=Recording, bind=True, max_retries=1, default_retry_delay=0)
    def flaky(self: Task) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=ValueError("not yet"))
        return "done"

    res = flaky.delay()
    worker = solo_worker(mem_app)
    worker.run_until_idle()
    worker.run_until_idle()
    assert res.get(timeout=1) == "done"
    retry = next(h for h in heard if h[0] == "on_retry")
    _, exc, task_id, _, _, einfo = retry
    assert isinstance(exc, ValueError) and str(exc) == "not yet"
    assert task_id == res.id
    assert "Retry in 0s" in str(einfo.exception)
    returns = [h[1] for h in heard if h[0] == "after_return"]
    assert returns == ["RETRY", "SUCCESS"]


def test_autoretry_passes_the_raised_error_to_on_retry(mem_app: Conveyor, heard: Heard) -> None:
    @mem_app.task(base=Recording, autoretry_for=(OSError,), max_retries=0)
    def once() -> None:
        raise OSError("disk")

    once.delay()
    solo_worker(mem_app).run_until_idle()
    # max_retries=0: no retry, a failure
    assert [h[0] for h in heard if not str(h[0]).startswith("signal")] == [
        "before_start",
        "on_failure",
        "after_return",
    ]

    heard.clear()

    @mem_app.task(base=Recording, autoretry_for=(OSError,), max_retries=1, retry_jitter=False)
    def twice() -> None:
        raise OSError("disk")

    twice.delay()
    solo_worker(mem_app).run_until_idle()
    retry = next(h for h in heard if h[0] == "on_retry")
    assert isinstance(retry[1], OSError)


def test_reject_and_ignore_call_no_after_return(mem_app: Conveyor, heard: Heard) -> None:
    @mem_app.task(base=Recording)
    def refuse() -> None:
        raise Reject("no", requeue=False)

    @mem_app.task(base=Recording)
    def skip() -> None:
        raise Ignore()

    refuse.delay()
    skip.delay()
    solo_worker(mem_app).run_until_idle()
    hooks = [h[0] for h in heard if not str(h[0]).startswith("signal")]
    assert hooks == ["before_start", "before_start"]


class RaisingBeforeStart(Task):
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        raise PermissionError("not allowed to start")


def test_before_start_raising_fails_the_call_without_running_it(mem_app: Conveyor) -> None:
    ran: list[int] = []

    @mem_app.task(base=RaisingBeforeStart)
    def guarded() -> None:
        ran.append(1)

    res = guarded.delay()
    solo_worker(mem_app).run_until_idle()
    assert res.state == TaskState.FAILURE
    assert ran == []
    with pytest.raises(PermissionError, match="not allowed to start"):
        res.get(timeout=1)


class RaisingOnSuccess(Recording):
    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        raise RuntimeError("could not notify")


def test_on_success_raising_records_a_failure_and_calls_on_failure(
    mem_app: Conveyor, heard: Heard
) -> None:
    @mem_app.task(base=RaisingOnSuccess)
    def fine() -> int:
        return 1

    res = fine.delay()
    solo_worker(mem_app).run_until_idle()
    assert res.state == TaskState.FAILURE
    with pytest.raises(RuntimeError, match="could not notify"):
        res.get(timeout=1)
    assert "signal:task_success" not in names(heard)
    assert [h[0] for h in heard if h[0] in ("on_failure", "after_return")] == [
        "on_failure",
        "after_return",
    ]


class RaisingAfterTheOutcome(Task):
    def on_failure(self, *args: Any) -> None:
        raise RuntimeError("on_failure is broken")

    def after_return(self, *args: Any) -> None:
        raise RuntimeError("after_return is broken")


def test_on_failure_and_after_return_raising_are_logged_and_change_nothing(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(base=RaisingAfterTheOutcome)
    def ok() -> str:
        return "value"

    @mem_app.task(base=RaisingAfterTheOutcome)
    def bad() -> None:
        raise ValueError("the real error")

    good, failed = ok.delay(), bad.delay()
    solo_worker(mem_app).run_until_idle()
    assert good.get(timeout=1) == "value"
    with pytest.raises(ValueError, match="the real error"):
        failed.get(timeout=1)
    logged = caplog.text
    assert "on_failure raised" in logged and "after_return raised" in logged
    assert "on_failure is broken" in logged


def test_eager_calls_run_the_hooks_in_the_caller(mem_app: Conveyor, heard: Heard) -> None:
    mem_app.conf.task_always_eager = True

    @mem_app.task(base=Recording)
    def mul(x: int, y: int) -> int:
        return x * y

    res = mul.delay(3, 4)
    assert res.get(timeout=1) == 12
    assert [h[0] for h in heard if not str(h[0]).startswith("signal")] == [
        "before_start",
        "on_success",
        "after_return",
    ]


def test_plain_tasks_have_hooks_that_do_nothing(mem_app: Conveyor) -> None:
    @mem_app.task
    def plain() -> int:
        return 1

    plain.on_success(1, "id", (), {})  # the default does nothing and raises nothing
    res = plain.delay()
    solo_worker(mem_app).run_until_idle()
    assert res.get(timeout=1) == 1
