"""A call's own headers: `apply_async(headers=...)` and what before_task_publish receivers add
travel in the message and reach the task as `self.request.headers`; a retry keeps them, a
chain's later step has only its own signature's; conveyor's own fields never come from them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from conveyor import Conveyor, Task, chain
from conveyor import signals as sig
from conveyor.errors import EncodeError
from conveyor.message import decode_message
from conveyor.testing import solo_worker

Seen = list[dict[str, Any]]


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
def app(seen: Seen) -> Conveyor:
    app = Conveyor("hdr", broker="memory://", set_as_current=False)

    @app.task(name="hdr.show", bind=True)
    def show(self: Task, x: int = 0) -> int:
        req = self.request
        seen.append({"headers": dict(req.headers), "id": req.id, "retries": req.retries})
        return x + 1

    @app.task(name="hdr.flaky", bind=True, max_retries=3)
    def flaky(self: Task) -> str:
        seen.append({"headers": dict(self.request.headers), "retries": self.request.retries})
        if self.request.retries < 2:
            raise self.retry(countdown=0)
        return "done"

    return app


@pytest.fixture
def publish_receiver() -> Iterator[Callable[[Callable[..., None]], None]]:
    """Connect a before_task_publish receiver for the test (strongly); disconnected after."""
    connected: list[Callable[..., None]] = []

    def connect(receiver: Callable[..., None]) -> None:
        sig.before_task_publish.connect(receiver, weak=False)
        connected.append(receiver)

    yield connect
    for receiver in connected:
        assert sig.before_task_publish.disconnect(receiver)


def run(app: Conveyor) -> None:
    solo_worker(app).run_until_idle()


def test_headers_reach_the_task_as_request_headers(app: Conveyor, seen: Seen) -> None:
    given = {"tenant": "acme", "n": 3, "nested": {"a": [1, None, 2.5]}}
    res = app.tasks["hdr.show"].apply_async((1,), headers=given)
    run(app)
    assert res.get(timeout=1) == 2
    assert seen == [{"headers": given, "id": res.id, "retries": 0}]


def test_no_headers_means_an_empty_mapping_and_no_bytes_in_the_body(
    app: Conveyor, seen: Seen
) -> None:
    res = app.tasks["hdr.show"].delay()
    stored = app.broker.get_message(res.id)
    assert stored is not None and b"headers" not in stored.envelope.body
    run(app)
    assert seen[0]["headers"] == {}


def test_a_before_task_publish_receiver_may_add_change_and_remove_headers(
    app: Conveyor, seen: Seen, publish_receiver: Callable[[Callable[..., None]], None]
) -> None:
    def receiver(headers: dict[str, Any], **kwargs: Any) -> None:
        headers["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        headers["tenant"] = headers["tenant"].upper()
        del headers["drop"]

    publish_receiver(receiver)
    res = app.tasks["hdr.show"].apply_async(headers={"tenant": "acme", "drop": 1})
    run(app)
    assert res.get(timeout=1) == 1
    assert seen[0]["headers"] == {
        "tenant": "ACME",
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
    }


def test_headers_named_like_conveyors_own_fields_change_nothing(
    app: Conveyor, seen: Seen, publish_receiver: Callable[[Callable[..., None]], None]
) -> None:
    heard: list[dict[str, Any]] = []

    def receiver(headers: dict[str, Any], **kwargs: Any) -> None:
        heard.append(dict(headers))
        headers["id"] = "not-the-id"  # conveyor's own key: not sent, the message's id stands
        headers["task"] = "hdr.other"

    publish_receiver(receiver)
    res = app.tasks["hdr.show"].apply_async(headers={"retries": 7, "custom": True})
    assert heard[0]["retries"] == 0  # the receiver sees the message's own value
    run(app)
    assert res.get(timeout=1) == 1
    # the caller's header named `retries` is delivered as given; the request's retries is 0
    assert seen == [{"headers": {"retries": 7, "custom": True}, "id": res.id, "retries": 0}]


def test_a_retry_keeps_the_calls_headers(
    app: Conveyor, seen: Seen, publish_receiver: Callable[[Callable[..., None]], None]
) -> None:
    def receiver(headers: dict[str, Any], **kwargs: Any) -> None:
        headers["added"] = "by-receiver"

    publish_receiver(receiver)
    res = app.tasks["hdr.flaky"].apply_async(headers={"k": "v"})
    run(app)
    assert res.get(timeout=1) == "done"
    want = {"k": "v", "added": "by-receiver"}
    assert seen == [{"headers": want, "retries": n} for n in range(3)]


def test_eager_calls_get_their_headers_and_keep_them_on_retry(app: Conveyor, seen: Seen) -> None:
    app.conf.task_always_eager = True
    res = app.tasks["hdr.flaky"].apply_async(headers={"k": "eager"})
    assert res.get(timeout=1) == "done"
    assert [s["headers"] for s in seen] == [{"k": "eager"}] * 3


def test_a_chain_step_gets_only_its_own_signatures_headers(app: Conveyor, seen: Seen) -> None:
    show = app.tasks["hdr.show"]
    first = show.s(1).set(headers={"step": 1})
    res = chain(first, show.s(), show.s().set(headers={"step": 3})).apply_async()
    run(app)
    assert res.get(timeout=1) == 4
    assert [s["headers"] for s in seen] == [{"step": 1}, {}, {"step": 3}]


def test_signature_headers_via_the_long_form_and_set_replaces(app: Conveyor, seen: Seen) -> None:
    show = app.tasks["hdr.show"]
    sig_ = show.signature((5,), headers={"a": 1}).set(headers={"b": 2})
    assert sig_.headers == {"b": 2}
    sig_.delay()
    run(app)
    assert seen[0]["headers"] == {"b": 2}


def test_headers_that_are_not_json_are_refused_at_the_call(
    app: Conveyor, seen: Seen, publish_receiver: Callable[[Callable[..., None]], None]
) -> None:
    show = app.tasks["hdr.show"]
    with pytest.raises(EncodeError, match=r"headers\['when'\]"):
        show.apply_async(headers={"when": object()})
    with pytest.raises(EncodeError, match=r"headers\['x'\]"):
        show.s().set(headers={"x": {1, 2}})

    def receiver(headers: dict[str, Any], **kwargs: Any) -> None:
        headers["bad"] = b"bytes"

    publish_receiver(receiver)
    with pytest.raises(EncodeError, match=r"headers\['bad'\]"):
        show.delay()
    run(app)
    assert seen == []  # nothing was sent


def test_a_body_with_headers_that_are_not_an_object_does_not_decode() -> None:
    body = msgspec.json.encode({"id": "a", "task": "t", "headers": ["x"]})
    with pytest.raises(Exception, match="headers"):
        decode_message(body)
