"""Canvas as Celery's docs call it: `sig()`, `group(...)()`, `chain(...)()`, `chord(h, b)()`,
`~sig`, `res.parent`, `task.map` / `starmap` / `chunks`, and `link` / `link_error` (callbacks
sent once, errbacks given Celery's arguments), run by an in-process worker (and eagerly)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import (
    AsyncResult,
    Conveyor,
    GroupResult,
    Request,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    subtask,
)
from conveyor.brokers.base import WorkerInfo
from conveyor.canvas.dicts import as_dict
from conveyor.canvas.flow import after_failure, after_success
from conveyor.canvas.signature import links_of
from conveyor.errors import ConfigurationError, EncodeError, NotRegistered
from conveyor.finalize import problems
from conveyor.options import CallOptions
from conveyor.results.base import ErrorInfo
from conveyor.testing import solo_worker

from .test_canvas import chord_error_text


@pytest.fixture
def app() -> Conveyor:
    app = Conveyor("calling", broker="memory://", set_as_current=False)
    given: list[Any] = []  # what callbacks and errbacks were given
    app.__dict__["seen"] = given

    @app.task(name="add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="tsum")
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="boom")
    def boom(x: int) -> int:
        raise ZeroDivisionError(f"boom on {x}")

    @app.task(name="record")
    def record(*args: Any) -> str:
        given.append(("record", args))
        return "recorded"

    @app.task(name="on_error")  # Celery's old errback shape: the failed call's id
    def on_error(task_id: str) -> None:
        given.append(("on_error", task_id))

    @app.task(name="error_handler")  # Celery's errback shape: (request, exc, traceback)
    def error_handler(request: Request, exc: BaseException, traceback: str | None) -> str:
        given.append(("error_handler", request, exc, traceback))
        return f"handled {request.id}"

    return app


def run(app: Conveyor) -> None:
    solo_worker(app).run_until_idle()


def seen(app: Conveyor) -> list[Any]:
    found: list[Any] = app.__dict__["seen"]
    return found


# -- calling signatures and workflows as Celery does ------------------------------------------
def test_calling_a_signature_runs_the_task_inline(app: Conveyor) -> None:
    add = app.tasks["add"]
    assert add.s(2, 2)() == 4
    assert add.s(2)(8) == 10  # partial: the call's arguments come first
    assert add.si(2, 2)(100) == 4  # immutable: the call's arguments are ignored
    assert app.broker.queue_stats() == []  # nothing was sent
    with pytest.raises(NotRegistered, match="cannot be called inline"):
        signature("nope", app=app)()


def test_an_immutable_signature_ignores_partial_arguments_when_sent(app: Conveyor) -> None:
    res = app.tasks["add"].si(2, 2).delay(5)
    run(app)
    assert res.get(timeout=1) == 4


def test_group_chain_and_chord_are_sent_by_calling_them(app: Conveyor) -> None:
    add, mul, tsum = app.tasks["add"], app.tasks["mul"], app.tasks["tsum"]
    grouped = group(add.s(i, i) for i in range(4))()
    partial = group(add.s(1), add.s(2))(10)  # each member given 10 first
    chained = chain(add.s(4, 4), mul.s(8))()
    piped = (add.s(2, 2) | mul.s(3))()
    chained_args = chain(add.s(4), mul.s(2))(1)
    chorded = chord((add.s(i, i) for i in range(10)), tsum.s())()
    body_later = chord([add.s(1, 1), add.s(2, 2)])(tsum.s())
    run(app)
    assert isinstance(grouped, GroupResult) and grouped.get(timeout=1) == [0, 2, 4, 6]
    assert partial.get(timeout=1) == [11, 12]
    assert chained.get(timeout=1) == 64
    assert piped.get(timeout=1) == 12
    assert chained_args.get(timeout=1) == 10
    assert chorded.get(timeout=1) == 90
    assert body_later.get(timeout=1) == 6


def test_a_chain_result_knows_its_parents(app: Conveyor) -> None:
    add, mul, tsum = app.tasks["add"], app.tasks["mul"], app.tasks["tsum"]
    res = chain(add.s(2, 2), add.s(4), mul.s(8))()
    chorded = chord([add.s(1, 1), add.s(2, 2)], tsum.s())()
    after_chord = chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s()))()
    alone = add.delay(1, 1)
    run(app)
    assert res.get(timeout=1) == 64
    assert isinstance(res.parent, AsyncResult) and res.parent.get(timeout=1) == 8
    assert res.parent.parent is not None and res.parent.parent.get(timeout=1) == 4
    assert res.parent.parent.parent is None
    assert isinstance(chorded.parent, GroupResult) and chorded.parent.get(timeout=1) == [2, 4]
    header = after_chord.parent
    assert isinstance(header, GroupResult) and header.get(timeout=1) == [3, 4]
    assert header.parent is not None and header.parent.get(timeout=1) == 2
    assert alone.parent is None and AsyncResult(res.id, app).parent is None


def test_invert_sends_and_waits(app: Conveyor) -> None:
    app.conf.task_always_eager = True
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    assert ~add.s(2, 2) == 4
    assert ~(add.s(2, 2) | add.s(8)) == 12
    assert ~group(add.s(i, i) for i in range(3)) == [0, 2, 4]
    assert ~chord([add.s(1, 1), add.s(2, 2)], tsum.s()) == 6


# -- map, starmap, chunks ---------------------------------------------------------------------
def test_map_and_starmap_run_every_item_in_one_call(app: Conveyor) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    mapped = tsum.map([[1, 2], [3, 4, 5]]).delay()
    starred = add.starmap(zip(range(5), range(5), strict=True)).apply_async()
    run(app)
    assert mapped.get(timeout=1) == [3, 12]
    assert starred.get(timeout=1) == [0, 2, 4, 6, 8]
    assert mapped.name == "conveyor.map" and starred.name == "conveyor.starmap"
    app.conf.task_always_eager = True
    assert ~add.starmap([(2, 2), (4, 4)]) == [4, 8]


def test_chunks_split_the_items_into_a_group_of_calls(app: Conveyor) -> None:
    add = app.tasks["add"]
    res = add.chunks(zip(range(10), range(10), strict=True), 4)()
    grouped = add.chunks([(1, 1), (2, 2), (3, 3)], 2).group()
    assert len(grouped.members) == 2
    grouped_res = grouped.apply_async()
    run(app)
    assert isinstance(res, GroupResult) and len(res) == 3
    assert res.get(timeout=1) == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]
    assert grouped_res.get(timeout=1) == [[2, 4], [6]]
    with pytest.raises(Exception, match="at least 1"):
        chunks(add, [(1, 1)], 0)


def test_map_calls_go_to_the_mapped_tasks_queue(app: Conveyor) -> None:
    @app.task(name="slow", queue="slow")
    def slow(x: int) -> int:
        return x

    assert slow.map([1]).queue == "slow"
    assert app.tasks["add"].map([1]).queue == app.conf.settings.task_default_queue


# -- link ----------------------------------------------------------------------------------
def test_link_sends_callbacks_with_the_result(app: Conveyor) -> None:
    add, mul, record = app.tasks["add"], app.tasks["mul"], app.tasks["record"]
    res = add.apply_async((2, 2), link=mul.s(16))
    both = add.apply_async((1, 1), link=[record.s("a"), record.si("b")])
    sig = add.s(3, 3)
    assert sig.link(record.s()) is not None
    from_sig = sig.delay()
    run(app)
    assert res.get(timeout=1) == 4 and both.get(timeout=1) == 2 and from_sig.get(timeout=1) == 6
    assert sorted(seen(app), key=repr) == sorted(
        [("record", (2, "a")), ("record", ("b",)), ("record", (6,))], key=repr
    )
    assert app.broker.queue_stats() == []


def test_link_on_a_chain_follows_its_last_step_and_on_a_group_its_first_member(
    app: Conveyor,
) -> None:
    add, record = app.tasks["add"], app.tasks["record"]
    chain(add.s(1, 1), add.s(10)).apply_async(link=record.s("chain"))
    g = group(add.s(2, 2), add.s(3, 3))
    g.link(record.s("group"))  # made immutable, as Celery does
    g.apply_async()
    ch = chord([add.s(1, 1), add.s(2, 2)], app.tasks["tsum"].s())
    ch.link(record.s("chord"))
    ch()
    run(app)
    assert sorted(seen(app), key=repr) == sorted(
        [("record", (12, "chain")), ("record", ("group",)), ("record", (6, "chord"))], key=repr
    )


def test_a_callback_is_sent_once_when_its_parent_runs_again(app: Conveyor) -> None:
    add, record = app.tasks["add"], app.tasks["record"]
    links = links_of(record.s(), None)  # what add.apply_async(link=...) sends with the call
    res = app.publish("add", (2, 2), {}, CallOptions(), add, links)
    run(app)
    # the parent is delivered again (its ack was lost) and settles again
    after_success(app, links, res.id, 4, "add")
    run(app)
    assert seen(app) == [("record", (4,))]


# -- link_error --------------------------------------------------------------------------------
def test_errbacks_get_the_arguments_celery_gives_them(app: Conveyor) -> None:
    boom, on_error = app.tasks["boom"], app.tasks["on_error"]
    res = boom.apply_async((7,), link_error=[on_error.s(), app.tasks["error_handler"].s()])
    run(app)
    with pytest.raises(ZeroDivisionError):
        res.get(timeout=1)
    by_name = {entry[0]: entry for entry in seen(app)}
    assert by_name["on_error"] == ("on_error", res.id)
    _, request, exc, traceback = by_name["error_handler"]
    assert isinstance(request, Request)
    assert (request.id, request.task, list(request.args)) == (res.id, "boom", [7])
    assert isinstance(exc, ZeroDivisionError) and str(exc) == "boom on 7"
    assert isinstance(traceback, str) and "ZeroDivisionError" in traceback
    assert app.broker.queue_stats() == []


def test_errbacks_do_not_run_on_success_nor_callbacks_on_failure(app: Conveyor) -> None:
    add, boom, record, on_error = (app.tasks[n] for n in ("add", "boom", "record", "on_error"))
    add.apply_async((1, 1), link_error=on_error.s())
    boom.apply_async((1,), link=record.s())
    boom.s(2).on_error(on_error.s()).delay()
    run(app)
    assert [entry[0] for entry in seen(app)] == ["on_error"]


def test_an_errback_on_a_chain_fires_for_the_step_that_failed(app: Conveyor) -> None:
    add, boom, handler = app.tasks["add"], app.tasks["boom"], app.tasks["error_handler"]
    res = chain(add.s(1, 1), boom.s(), add.s(5)).apply_async(link_error=handler.s())
    run(app)
    with pytest.raises(ZeroDivisionError):
        res.get(timeout=1)
    (entry,) = seen(app)
    assert entry[1].task == "boom" and list(entry[1].args) == [2]


def test_an_errback_is_sent_once_when_its_parent_is_settled_again(app: Conveyor) -> None:
    boom, handler = app.tasks["boom"], app.tasks["error_handler"]
    links = links_of(None, [handler.s(), app.tasks["on_error"].s()])
    res = app.publish("boom", (3,), {}, CallOptions(), boom, links)
    run(app)
    error = ErrorInfo("ZeroDivisionError", "boom on 3")
    after_failure(app, links, "boom", res.id, error)
    run(app)
    assert sorted(entry[0] for entry in seen(app)) == ["error_handler", "on_error"]


def test_errbacks_in_eager_mode(app: Conveyor) -> None:
    app.conf.task_always_eager = True
    boom, handler, on_error = app.tasks["boom"], app.tasks["error_handler"], app.tasks["on_error"]
    res = boom.apply_async((9,), link_error=[handler.s(), on_error.s()])
    assert res.failed()
    assert [entry[0] for entry in seen(app)] == ["error_handler", "on_error"]
    assert isinstance(seen(app)[0][2], ZeroDivisionError)


def test_link_refuses_what_is_not_a_signature_and_unknown_options(app: Conveyor) -> None:
    add = app.tasks["add"]
    with pytest.raises(Exception, match=r"use task\.s"):
        add.apply_async((1, 1), link=add)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="eta"):
        chain(add.s(1, 1), add.s(2)).apply_async(eta=5)
    with pytest.raises(TypeError, match="not expires: send the task itself"):
        add.s(1, 1).apply_async(expires=5)
    assert add.s(1, 1).apply_async(queue="other", countdown=0).id


def test_a_failed_header_member_sends_the_chord_bodys_errbacks(app: Conveyor) -> None:
    add, boom, tsum = app.tasks["add"], app.tasks["boom"], app.tasks["tsum"]
    handler, on_error = app.tasks["error_handler"], app.tasks["on_error"]
    ch = chord([add.s(1, 1), boom.s(4), boom.s(5)], tsum.s())
    ch.link_error(handler.s())
    res = ch.apply_async(link_error=on_error.s())
    later = chain(boom.s(6), chord([add.s(1), add.s(2)], tsum.s().on_error(on_error.s())))()
    run(app)
    with pytest.raises(ZeroDivisionError):
        res.get(timeout=1)  # a member's error, through res.parent, as Celery's
    assert isinstance(res, AsyncResult)
    with pytest.raises(Exception) as err:  # the body's own outcome: Celery's ChordError
        res.get(timeout=1, follow_parents=False)
    assert "raised ZeroDivisionError('boom on" in chord_error_text(err.value)
    with pytest.raises(ZeroDivisionError):
        later.get(timeout=1)  # the chord never started: the failed step's own error
    # once each, though two members failed; told of the body's call, as Celery does; the
    # chord after the failed step never started, so its body's errback is not sent
    assert sorted(entry[0] for entry in seen(app)) == ["error_handler", "on_error"]
    by_name = {entry[0]: entry for entry in seen(app)}
    assert by_name["on_error"][1] == res.id
    request, exc = by_name["error_handler"][1], by_name["error_handler"][2]
    assert request.id == res.id and request.task == "tsum"
    assert chord_error_text(exc).startswith("Dependency ")  # as Celery: the body's ChordError


def test_children_are_the_handles_on_the_callbacks(app: Conveyor) -> None:
    add, mul = app.tasks["add"], app.tasks["mul"]
    res = add.apply_async((2, 2), link=mul.s(16))
    sig = add.s(1, 1)
    sig.link(mul.s(3))
    from_sig = sig.delay()
    run(app)
    assert res.get(timeout=1) == 4
    assert res.children is not None and res.children[0].get(timeout=1) == 64
    assert from_sig.children is not None and from_sig.children[0].get(timeout=1) == 6
    assert add.delay(1, 1).children is None


def test_signature_repr_options_and_clone_as_celery(app: Conveyor) -> None:
    add = app.tasks["add"]
    s = add.s(2)
    assert repr(s) == "add(2)"
    assert repr(s.clone(args=(4,), kwargs={"debug": True})) == "add(4, 2, debug=True)"
    assert add.signature((2, 2), countdown=10).options == {"countdown": 10}
    linked = add.s(1, 1)
    cb = linked.link(add.s(5))
    assert linked.options == {"link": [cb]}
    assert (
        linked.clone().options == {"link": [cb]}
        and linked.clone().callbacks is not linked.callbacks
    )


def test_a_group_errback_runs_for_each_failed_member(app: Conveyor) -> None:
    boom, on_error = app.tasks["boom"], app.tasks["on_error"]
    g = group(boom.s(1), boom.s(2), app.tasks["add"].s(1, 1))
    g.link_error(on_error.s())
    res = g()
    run(app)
    failed = [r.id for r in res.results[:2]]
    assert sorted(entry[1] for entry in seen(app)) == sorted(failed)


def test_builtin_tasks_do_not_need_the_default_queue_declared() -> None:
    app = Conveyor("declared", broker="memory://", set_as_current=False)
    app.conf.update(task_queues=["hipri"], task_default_queue="hipri")

    @app.task(name="add", queue="hipri")
    def add(x: int, y: int) -> int:
        return x + y

    app.conf.update(task_default_queue="elsewhere")  # routed explicitly: nothing uses it
    # conveyor.map / starmap / errback are not taken to go to "elsewhere" (shared tasks other
    # tests registered in every app may be)
    assert not [p for p in problems(app) if "conveyor." in p.message]
    res = add.map([(1,)]).set(queue="hipri")
    assert res.queue == "hipri" and add.starmap([(1, 2)]).queue == "hipri"


def test_an_errback_waits_for_the_last_retry(app: Conveyor) -> None:
    tries: list[int] = []

    @app.task(name="flaky", bind=True, max_retries=2, default_retry_delay=0)
    def flaky(self: Any) -> None:
        tries.append(self.request.retries)
        raise self.retry(exc=ValueError("still failing"))

    res = flaky.apply_async(link_error=app.tasks["error_handler"].s())
    run(app)
    with pytest.raises(ValueError, match="still failing"):
        res.get(timeout=1)
    assert tries == [0, 1, 2]
    ((_, request, exc, _),) = seen(app)  # once, after the retries were used up
    assert request.id == res.id and request.retries == 2 and isinstance(exc, ValueError)


def test_a_call_the_worker_refuses_sends_its_errbacks(app: Conveyor) -> None:
    queue = app.conf.settings.task_default_queue  # another worker published the name
    app.broker.register_worker(WorkerInfo("new@h", (queue,), ("nowhere.gone",), 1, 0.0))
    res = signature("nowhere.gone", app=app).apply_async(link_error=app.tasks["on_error"].s())
    run(app)  # this worker does not have it: it refuses the call
    assert seen(app) == [("on_error", res.id)]


# -- signatures as arguments (Celery's dict form) ----------------------------------------------
def test_a_signature_given_as_an_argument_arrives_as_its_dict(app: Conveyor) -> None:
    add, record = app.tasks["add"], app.tasks["record"]

    @app.task(name="process")
    def process(data: int, callback: dict[str, Any], more: list[Any]) -> Any:
        given.append((callback, more))
        return signature(callback, app=app).delay(data * 2).id

    given: list[Any] = []
    callback = add.s(1).set(priority=5, countdown=0)
    callback.link(record.si("after"))
    res = process.delay(5, callback=callback, more=[add.si(2, 2), 3])
    run(app)
    ((sent, more),) = given
    assert sent == {
        "task": "add",
        "args": [1],
        "kwargs": {},
        "options": {
            "priority": 5,
            "countdown": 0,
            "link": [
                {
                    "task": "record",
                    "args": ["after"],
                    "kwargs": {},
                    "options": {},
                    "subtask_type": None,
                    "immutable": True,
                }
            ],
        },
        "subtask_type": None,
        "immutable": False,
    }
    assert more[0]["task"] == "add" and more[1] == 3
    assert AsyncResult(res.get(timeout=1), app).get(timeout=1) == 11  # add(10, 1)
    assert seen(app) == [("record", ("after",))]  # its link came along


def test_signature_and_maybe_signature_rebuild_the_dict_form(app: Conveyor) -> None:
    add = app.tasks["add"]
    sig = add.s(2, k=1).set(priority=3)
    again = signature(as_dict(sig), app=app)
    assert again == sig and again.options == {"priority": 3}
    assert maybe_signature(None) is None and maybe_signature(sig) is sig
    assert maybe_signature(as_dict(sig), app=app) == sig
    assert subtask is signature and signature(sig) == sig and signature(sig) is not sig
    in_chain = chain(app.tasks["mul"].s(2, 3), app.tasks["record"].s(add.s(1)))()
    run(app)
    assert in_chain.get(timeout=1) == "recorded"
    assert seen(app)[0][1][1]["task"] == "add"  # record(6, <add's dict>)
    with pytest.raises(ConfigurationError, match="not supported in its dict form"):
        signature({"task": "add", "options": {"eta": 1}}, app=app)
    with pytest.raises(ConfigurationError, match="a chain cannot be rebuilt"):
        signature({"task": "celery.chain", "subtask_type": "chain"}, app=app)
    with pytest.raises(EncodeError, match="chain"):
        add.delay(1, chain(add.s(1, 1), add.s(2)))


def test_chunks_and_maps_compose_like_signatures(app: Conveyor) -> None:
    add, tsum = app.tasks["add"], app.tasks["tsum"]
    flat = app.tasks["record"]
    piped = (add.chunks([(1, 1), (2, 2), (3, 3)], 2) | flat.s())()
    mapped = chord([tsum.map([[1, 2]]), add.starmap([(3, 4)])], flat.s())()
    run(app)
    assert piped.get(timeout=1) == "recorded" and mapped.get(timeout=1) == "recorded"
    assert sorted(seen(app), key=repr) == [("record", ([[2, 4], [6]],)), ("record", ([[3], [7]],))]
    app.conf.task_always_eager = True
    assert add.chunks([(1, 1), (2, 2), (3, 3)], 2)().get(timeout=1) == [[2, 4], [6]]
    assert ~group(add.s(1, 1), tsum.map([[1, 2]])) == [2, [3]]


def test_celerys_canvas_module_names() -> None:
    from conveyor import canvas

    assert vars(canvas)["signature"] is signature  # the function, as celery.canvas.signature
    assert canvas.chain is chain and canvas.chunks is chunks
    assert canvas.maybe_signature is maybe_signature and canvas.subtask is signature
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        canvas.nope  # noqa: B018


def test_a_signatures_id_can_be_fixed_before_it_is_sent(app: Conveyor) -> None:
    add = app.tasks["add"]
    sig = add.s(2, 2)
    handle = sig.freeze()  # in place, as Celery's
    assert sig.id == handle.id and sig.options == {"task_id": handle.id}
    sent = sig.delay()
    given = add.s(1, 1).apply_async(task_id="my-id")
    in_chain = chain(add.s(1, 1), add.s(5).set(task_id="last"))()
    run(app)
    assert sent.id == handle.id and handle.get(timeout=1) == 4
    assert given.id == "my-id" and given.get(timeout=1) == 2
    assert in_chain.id == "last" and in_chain.get(timeout=1) == 7
    assert signature(as_dict(add.s(1).set(task_id="t")), app=app).id == "t"
    with pytest.raises(ConfigurationError, match="non-empty string"):
        add.s(1).set(task_id="")


def test_a_long_chains_handle_links_every_step(app: Conveyor) -> None:
    add = app.tasks["add"]
    res = chain(add.s(0, 0), *(add.s(1) for _ in range(2999)))()
    depth, node = 0, res
    while node.parent is not None:
        depth, node = depth + 1, node.parent
    assert depth == 2999


def test_send_task_takes_link_and_link_error(app: Conveyor) -> None:
    linked = app.send_task("add", (2, 2), link=app.tasks["mul"].s(16))
    failed = app.send_task("boom", (1,), link_error=app.tasks["on_error"].s())
    run(app)
    assert linked.children is not None and linked.children[0].get(timeout=1) == 64
    assert seen(app) == [("on_error", failed.id)]
    with pytest.raises(TypeError, match=r"'lnk' \(did you mean 'link'\?\)"):
        app.send_task("add", (1, 1), lnk=app.tasks["mul"].s(2))


def test_chord_errbacks_on_the_header_too_when_celerys_setting_says_so(app: Conveyor) -> None:
    app.conf.update(task_allow_error_cb_on_chord_header=True)
    add, boom, tsum, record = (app.tasks[n] for n in ("add", "boom", "tsum", "record"))
    ch = chord([add.s(1, 1), boom.s(1), boom.s(2)], tsum.s())
    ch.link_error(record.s("x"))
    ch()
    run(app)
    header_copies = [e for e in seen(app) if e[1] == ("x",)]  # immutable copies: own args only
    on_body = [e for e in seen(app) if e[1] != ("x",)]
    assert len(header_copies) == 2  # one per failed member
    assert len(on_body) == 1 and on_body[0][1][-1] == "x"  # (request, exc, traceback, "x")
