"""Celery's result API on conveyor: AsyncResult(id) on the current app, custom states from
update_state (fenced), get(on_message=...), the guard against get() inside a task, ignored
results, task.apply() and EagerResult, ResultSet/GroupResult, and which stored exceptions
come back as their own class."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Ignore, RemoteError
from conveyor.errors import ConfigurationError, EncodeError
from conveyor.request import Request, running
from conveyor.result import (
    AsyncResult,
    EagerResult,
    GroupResult,
    ResultSet,
    allow_join_result,
    rebuild_exception,
)
from conveyor.results.base import ErrorInfo, Outcome
from conveyor.states import TaskState
from conveyor.testing import solo_worker


class ShopError(Exception):
    """An application's exception, loaded in the reading process."""


class NeedsTwo(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(code, text)


class NotAnError:
    pass


@pytest.fixture
def live_app() -> Iterator[Conveyor]:
    """A memory app on the real clock (waits use real time), made the current app."""
    app = Conveyor("live", broker="memory://")
    yield app
    app.close()


# -- AsyncResult with no app ----------------------------------------------------------------
def test_async_result_by_id_alone_reads_the_current_app(live_app: Conveyor) -> None:
    @live_app.task
    def add(x: int, y: int) -> int:
        return x + y

    sent = add.delay(2, 3)
    solo_worker(live_app).run_until_idle()
    res = AsyncResult(sent.id)
    assert res.app is live_app and res.get(timeout=1) == 5 and res == sent.id
    assert str(res.state) == "SUCCESS" and res.state == TaskState.SUCCESS
    with pytest.raises(ValueError, match="needs a task id"):
        AsyncResult(None)  # type: ignore[arg-type]


def test_async_result_with_no_app_anywhere_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import conveyor.app

    def no_app() -> Conveyor:
        raise ConfigurationError("no Conveyor app exists yet")

    monkeypatch.setattr(conveyor.app, "current_app", no_app)
    res = AsyncResult("some-id")  # resolved when first read, as a view module may load first
    with pytest.raises(ConfigurationError, match="import the module that creates yours"):
        _ = res.state


# -- custom states --------------------------------------------------------------------------
def test_progress_is_readable_while_the_task_runs_and_replaced_by_the_outcome(
    mem_app: Conveyor,
) -> None:
    seen: list[tuple[str, Any, bool]] = []

    @mem_app.task(bind=True)
    def upload(self: Any, files: list[str]) -> int:
        for i in range(len(files)):
            self.update_state(state="PROGRESS", meta={"current": i, "total": len(files)})
            me = mem_app.AsyncResult(self.request.id)
            seen.append((me.state, me.info, me.ready()))
        return len(files)

    res = upload.delay(["a", "b"])
    mem_app.results.put([Outcome(res.id, TaskState.STARTED, worker="w@h")])  # track_started
    assert res.state == "STARTED" and res.info == {"pid": None, "hostname": "w@h"}
    solo_worker(mem_app).run_until_idle()
    assert seen == [
        ("PROGRESS", {"current": 0, "total": 2}, False),
        ("PROGRESS", {"current": 1, "total": 2}, False),
    ]
    assert res.state == "SUCCESS" and res.get(timeout=1) == 2
    outcome = res.outcome
    assert outcome is not None and outcome.custom_state is None


def test_a_manual_failure_then_ignore_is_what_readers_get(mem_app: Conveyor) -> None:
    # The pattern of Celery's users: store FAILURE with exc_type/exc_message, raise Ignore.
    @mem_app.task(bind=True)
    def check(self: Any) -> None:
        self.update_state(
            state="FAILURE", meta={"exc_type": "ValueError", "exc_message": ["bad input"]}
        )
        raise Ignore()

    res = check.delay()
    solo_worker(mem_app).run_until_idle()
    assert res.state == "FAILURE" and res.failed()
    with pytest.raises(ValueError, match="bad input"):
        res.get(timeout=1)


def test_update_state_refuses_what_it_cannot_store(mem_app: Conveyor) -> None:
    @mem_app.task(bind=True)
    def t(self: Any, state: str, meta: Any) -> str:
        try:
            self.update_state(state=state, meta=meta)
        except (ValueError, EncodeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return "stored"

    calls = {
        "pending": t.delay("PENDING", None),
        "revoked": t.delay("REVOKED", None),
        "failure": t.delay("FAILURE", {"no": "type"}),
        "ok": t.delay("PROGRESS", None),
    }
    solo_worker(mem_app).run_until_idle()
    got = {k: r.get(timeout=1) for k, r in calls.items()}
    assert "forget()" in got["pending"] and "revoke()" in got["revoked"]
    assert "exc_type" in got["failure"] and got["ok"] == "stored"
    with pytest.raises(ValueError, match="needs task_id="):
        t.update_state(state="PROGRESS")  # called directly: no running call
    with pytest.raises(EncodeError, match="update_state meta"):
        t.update_state(task_id="x", state="PROGRESS", meta={1, 2})


def test_a_write_under_a_lease_no_longer_held_is_dropped_and_logged(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task(bind=True)
    def t(self: Any) -> None:
        return None

    stale = Request(id="gone", task=t.name, lease_token=7)  # the broker holds no such lease
    with running(stale), caplog.at_level(logging.WARNING, "conveyor.task"):
        t.update_state(state="PROGRESS", meta={"n": 1})
    assert mem_app.results.get("gone") is None
    assert "lease (token 7) is no longer held" in caplog.text


def test_another_calls_newer_outcome_is_not_overwritten(
    mem_app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    @mem_app.task
    def t() -> None:
        return None

    mem_app.results.put([Outcome("x", TaskState.STARTED, token=5)])  # owned by a worker's lease
    with caplog.at_level(logging.WARNING, "conveyor.task"):
        t.update_state(task_id="x", state="PROGRESS", meta=1)
    got = mem_app.results.get("x")
    assert got is not None and got.custom_state is None
    assert "a newer run of the call owns its result" in caplog.text


# -- get(): on_message, callback, guard, ignored ----------------------------------------------
def test_on_message_sees_each_state_then_the_value(live_app: Conveyor) -> None:
    steps = [
        Outcome("w", TaskState.STARTED),
        Outcome("w", TaskState.STARTED, value=b'{"p":50}', custom_state="PROGRESS"),
        Outcome("w", TaskState.SUCCESS, value=b'"done"', finished_at=time.time()),
    ]

    def writer() -> None:
        for step in steps:
            time.sleep(0.15)
            live_app.results.put([step])

    bodies: list[dict[str, Any]] = []
    ticks: list[int] = []
    called: list[tuple[str, Any]] = []
    thread = threading.Thread(target=writer)
    thread.start()
    value = AsyncResult("w", live_app).get(
        timeout=10,
        interval=0.02,
        on_message=bodies.append,
        on_interval=lambda: ticks.append(1),
        callback=lambda tid, v: called.append((tid, v)),
    )
    thread.join()
    assert value == "done" and called == [("w", "done")] and ticks
    assert [(b["status"], b["result"]) for b in bodies] == [
        ("STARTED", {"pid": None, "hostname": None}),
        ("PROGRESS", {"p": 50}),
        ("SUCCESS", "done"),
    ]
    assert bodies[-1]["task_id"] == "w" and bodies[-1]["date_done"] is not None


def test_on_message_times_out_like_get(live_app: Conveyor) -> None:
    with pytest.raises(TimeoutError, match=r"did not finish within 0\.1 s"):
        AsyncResult("never", live_app).get(timeout=0.1, interval=0.02, on_message=print)


def test_get_inside_a_task_raises_unless_allowed(mem_app: Conveyor) -> None:
    @mem_app.task
    def add(x: int, y: int) -> int:
        return x + y

    done = add.delay(1, 1)
    solo_worker(mem_app).run_until_idle()

    @mem_app.task
    def waits(how: str) -> Any:
        if how == "default":
            return done.get(timeout=1)
        if how == "disabled":
            return done.get(timeout=1, disable_sync_subtasks=False)
        with allow_join_result():
            return done.get(timeout=1)

    calls = [waits.delay(how) for how in ("default", "disabled", "allowed")]
    solo_worker(mem_app).run_until_idle()
    first = calls[0].get(timeout=1, propagate=False)
    assert isinstance(first, RuntimeError) and "never call result.get()" in str(first)
    assert [c.get(timeout=1) for c in calls[1:]] == [2, 2]
    assert done.get(timeout=1) == 2  # outside a task: allowed


def test_get_of_an_ignored_result_returns_none_at_once(mem_app: Conveyor) -> None:
    @mem_app.task(ignore_result=True)
    def click(x: int) -> int:
        return x

    res = click.delay(1)
    assert res.ignored and res.get(timeout=None) is None  # no worker ran: it did not wait
    solo_worker(mem_app).run_until_idle()
    assert res.state == "PENDING"  # nothing was stored


def test_a_failed_parent_is_raised_first(mem_app: Conveyor) -> None:
    mem_app.results.put(
        [
            Outcome("p", TaskState.FAILURE, error=ErrorInfo("KeyError", "k")),
            Outcome("c", TaskState.SUCCESS, value=b"1"),
        ]
    )
    child = AsyncResult("c", mem_app, parent=AsyncResult("p", mem_app))
    with pytest.raises(KeyError):
        child.get(timeout=1)
    assert child.get(timeout=1, follow_parents=False) == 1


# -- apply() ----------------------------------------------------------------------------------
def test_apply_runs_here_and_holds_the_outcome(mem_app: Conveyor) -> None:
    attempts: list[int] = []

    @mem_app.task(bind=True, max_retries=3)
    def flaky(self: Any, x: int) -> int:
        attempts.append(self.request.retries)
        if self.request.retries < 2:
            raise self.retry(countdown=60)
        assert self.request.is_eager and self.request.delivery_info["queue"] == "q"
        return x * 2

    @mem_app.task
    def boom() -> None:
        raise ShopError("no stock")

    res = flaky.apply((21,), queue="q")
    assert isinstance(res, EagerResult) and isinstance(res, AsyncResult)
    assert (res.get(), res.state, res.ready(), res.successful(), attempts) == (
        42,
        "SUCCESS",
        True,
        True,
        [0, 1, 2],
    )
    assert mem_app.results.get(res.id) is None  # nothing stored, nothing sent
    assert mem_app.broker.queue_stats() == []
    failed = boom.apply(task_id="b1")
    assert failed.id == "b1" and failed.state == "FAILURE" and isinstance(failed.result, ShopError)
    assert "raise ShopError" in (failed.traceback or "")
    with pytest.raises(ShopError):
        failed.get()
    assert isinstance(failed.get(propagate=False), ShopError)
    with pytest.raises(ShopError, match="no stock"):
        boom.apply(throw=True)


def test_apply_of_an_ignored_or_rejected_call(mem_app: Conveyor) -> None:
    from conveyor import Reject

    @mem_app.task
    def skip() -> None:
        raise Ignore()

    @mem_app.task
    def refuse() -> None:
        raise Reject("bad input", requeue=False)

    ignored, rejected = skip.apply(), refuse.apply(throw=True)  # neither is a failure
    assert (ignored.state, ignored.get()) == ("IGNORED", None)
    assert (rejected.state, rejected.get()) == ("REJECTED", None)
    assert isinstance(rejected.result, Reject)


def test_apply_refuses_what_it_would_ignore(mem_app: Conveyor) -> None:
    @mem_app.task
    def t() -> None:
        return None

    with pytest.raises(ValueError, match=r"apply\(link=\.\.\.\) is not supported"):
        t.apply(link=t.s())
    with pytest.raises(TypeError, match="unknown option 'countdown'"):
        t.apply(countdown=3)
    assert t.apply(ignore_result=True, priority=3).state == "SUCCESS"


# -- sets of results --------------------------------------------------------------------------
def test_result_set_and_group_result_read_their_members_in_order(mem_app: Conveyor) -> None:
    @mem_app.task
    def double(x: int) -> int:
        return x * 2

    calls = [double.delay(i) for i in range(3)]
    solo_worker(mem_app).run_until_idle()
    rs = ResultSet(calls[:2])
    rs.add(calls[2])
    rs.add(calls[2])  # already a member
    assert len(rs) == 3 and rs.ready() and rs.successful() and rs.completed_count() == 3
    assert rs.join(timeout=1) == [0, 2, 4] and not rs.waiting()
    got: list[tuple[str, Any]] = []
    assert rs.get(timeout=1, callback=lambda tid, v: got.append((tid, v))) == []
    assert [v for _, v in got] == [0, 2, 4]
    rs.discard(calls[0].id)
    with pytest.raises(KeyError):
        rs.remove(calls[0])
    group = GroupResult("g1", calls, app=mem_app).save()
    back = GroupResult.restore("g1", app=mem_app)
    assert back == group and back is not None and back.get(timeout=1) == [0, 2, 4]
    back.delete()
    assert GroupResult.restore("g1", app=mem_app) is None


def test_a_set_raises_the_first_failure_in_order_without_waiting_for_later_members(
    live_app: Conveyor,
) -> None:
    live_app.results.put(
        [
            Outcome("a", TaskState.SUCCESS, value=b"1"),
            Outcome("b", TaskState.FAILURE, error=ErrorInfo("KeyError", "b")),
        ]
    )
    members = [AsyncResult(i, live_app) for i in ("a", "b", "never")]
    ticks: list[int] = []
    started = time.monotonic()
    with pytest.raises(KeyError, match="b"):
        ResultSet(members).get(timeout=30, interval=0.05)
    assert time.monotonic() - started < 5  # "never" was not waited for
    with pytest.raises(TimeoutError, match="2 of 3 results ready"):
        ResultSet(members).get(
            timeout=0.2, interval=0.05, propagate=False, on_interval=lambda: ticks.append(1)
        )
    assert ticks
    late = [AsyncResult(i, live_app) for i in ("never", "b")]  # an unfinished member first
    with pytest.raises(TimeoutError):
        ResultSet(late).get(timeout=0.2, interval=0.05)


# -- exceptions -------------------------------------------------------------------------------
class HttpError(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        super().__init__(status, headers, body)
        self.status, self.headers, self.body = status, headers, body


def test_loaded_exception_classes_come_back_as_themselves() -> None:
    here = __name__
    exc = rebuild_exception(ErrorInfo("ShopError", "no stock", "tb", here))
    assert type(exc) is ShopError and exc.args == ("no stock",)


def test_a_failed_calls_exception_comes_back_with_its_own_arguments(mem_app: Conveyor) -> None:
    @mem_app.task
    def fetch() -> None:
        raise HttpError(404, {"Server": "x"}, "gone")

    res = fetch.delay()
    solo_worker(mem_app).run_until_idle()
    with pytest.raises(HttpError) as err:
        res.get(timeout=1)
    assert (err.value.status, err.value.headers, err.value.body) == (404, {"Server": "x"}, "gone")
    assert isinstance(res.result, HttpError) and res.result.args == (404, {"Server": "x"}, "gone")
    # arguments JSON cannot carry are not kept: the message is, and the class is tried with it
    stored = rebuild_exception(ErrorInfo("HttpError", "404 gone", None, __name__), None)
    assert isinstance(stored, RemoteError)  # HttpError needs three arguments


@pytest.mark.parametrize(
    ("name", "module", "why"),
    [
        ("NeedsTwo", __name__, "its constructor wants other arguments"),
        ("NotAnError", __name__, "not an Exception"),
        ("f.<locals>.E", __name__, "local to a function"),
        ("Anything", "a_module_nobody_imported", "module not loaded (never imported)"),
    ],
)
def test_other_stored_exceptions_stay_remote_errors(name: str, module: str, why: str) -> None:
    exc = rebuild_exception(ErrorInfo(name, "text", None, module))
    assert isinstance(exc, RemoteError), why
    assert exc.type_name == f"{module}.{name}"


# -- eager mode and the result store ------------------------------------------------------------
def test_eager_outcomes_stay_in_the_process_unless_asked_to_be_stored(tmp_path: Path) -> None:
    # As Celery's tests run: eager mode on, the broker and backend of production unreachable.
    app = Conveyor("eager", broker="redis://127.0.0.1:1/0", set_as_current=False, backend=None)
    app.conf.update(task_always_eager=True)

    @app.task(bind=True)
    def add(self: Any, x: int, y: int) -> int:
        self.update_state(state="PROGRESS", meta={"x": x})
        return x + y

    res = add.delay(2, 2)
    assert res.get(timeout=1) == 4 and res.successful() and AsyncResult(res.id, app).result == 4
    app.close()

    stored_file = tmp_path / "eager.db"
    kept = Conveyor("kept", broker=f"sqlite:///{stored_file}", set_as_current=False)
    kept.conf.update(task_always_eager=True, task_store_eager_result=True)
    kept.task(name="kept.add")(lambda x, y: x + y)
    sent = kept.tasks["kept.add"].delay(1, 2)
    kept.close()
    reader = Conveyor("reader", broker=f"sqlite:///{stored_file}", set_as_current=False)
    try:
        assert AsyncResult(sent.id, reader).get(timeout=1) == 3  # in the configured store
    finally:
        reader.close()
