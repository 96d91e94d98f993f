from __future__ import annotations

import datetime
import decimal

import msgspec
import pytest

from conveyor.errors import DecodeError, EncodeError, MessageTooLarge
from conveyor.message import (
    MAX_NESTING,
    Message,
    admit_message,
    decode_message,
    encode_message,
    encode_value,
)


def test_round_trip() -> None:
    m = Message(
        id="1",
        task="p.f",
        args=(1, "a", None, [1.5, {"k": True}]),
        kwargs={"x": 1},
        retries=2,
        eta=10.0,
        expires=20.0,
        parent_id="p",
        root_id="r",
    )
    assert decode_message(encode_message(m, 1 << 20)) == m


@pytest.mark.parametrize(
    ("args", "kwargs", "path"),
    [
        ((datetime.datetime.now(),), {}, r"args\[0\] is a datetime\.datetime"),
        ((), {"amount": decimal.Decimal("1.5")}, r"kwargs\['amount'\] is a decimal\.Decimal"),
        (([1, {2, 3}],), {}, r"args\[0\]\[1\] is a builtins\.set"),
        ((), {"d": {1: "x"}}, r"kwargs\['d'\] has key 1"),
        ((float("nan"),), {}, r"args\[0\] is nan"),
    ],
)
def test_non_json_arguments_are_refused_naming_the_argument(
    args: tuple[object, ...], kwargs: dict[str, object], path: str
) -> None:
    with pytest.raises(EncodeError, match=path):
        encode_message(Message(id="1", task="t", args=args, kwargs=kwargs), 1 << 20)


def test_oversized_message_is_refused() -> None:
    with pytest.raises(MessageTooLarge, match="over the limit of 100"):
        encode_message(Message(id="1", task="t", args=("x" * 200,)), 100)


@pytest.mark.parametrize(
    "body", [b"not json", b"[1,2]", b'{"id": 1}', b'{"id":"1","task":"t","v":9}']
)
def test_undecodable_bodies_raise_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(body)


def test_return_values_are_checked_too() -> None:
    assert msgspec.json.decode(encode_value({"a": [1, 2]})) == {"a": [1, 2]}
    with pytest.raises(EncodeError, match=r"return value is a builtins\.object"):
        encode_value(object())


def test_new_task_ids_are_version_4_uuids_in_text_form() -> None:
    import uuid

    from conveyor.message import new_task_id

    ids = {new_task_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def _nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_up_to_the_limit_is_carried_and_beyond_it_refused_naming_the_argument() -> None:
    ok = Message(id="1", task="t", args=(_nested(MAX_NESTING),), kwargs={"d": {"k": []}})
    assert admit_message(encode_message(ok, 1 << 20), 1 << 20) == ok
    for args, kwargs, path in [
        ((1, _nested(MAX_NESTING + 1)), {}, r"^args\[1\]\[0\]"),
        ((), {"data": _nested(600)}, r"^kwargs\['data'\]\[0\]"),
    ]:
        with pytest.raises(EncodeError, match=path + r".*nested more than 100 lists/dicts deep"):
            encode_message(Message(id="1", task="t", args=args, kwargs=kwargs), 1 << 20)


def test_chain_steps_arguments_and_canvas_nesting_are_checked_at_the_call_site() -> None:
    from conveyor.canvas.nodes import ChainNode, SigNode

    deep = SigNode(task="p.next", id="2", args=(1, _nested(200)))
    with pytest.raises(EncodeError, match=r"^chain\[0\] \(p\.next\) args\[1\].*nested"):
        encode_message(Message(id="1", task="t", chain=(deep,)), 1 << 20)
    odd = SigNode(task="p.next", id="2", kwargs={"when": datetime.date(2020, 1, 1)})
    with pytest.raises(EncodeError, match=r"chain\[0\] \(p\.next\) kwargs\['when'\] is a datetime"):
        encode_message(Message(id="1", task="t", chain=(odd,)), 1 << 20)
    node: ChainNode | SigNode = SigNode(task="p.next", id="2")
    for _ in range(MAX_NESTING + 1):
        node = ChainNode(steps=(node,))
    with pytest.raises(EncodeError, match=r"\.steps is nested more than 100"):
        encode_message(Message(id="1", task="t", chain=(node,)), 1 << 20)


def test_return_values_are_bounded_like_arguments() -> None:
    assert encode_value(_nested(MAX_NESTING))
    with pytest.raises(EncodeError, match=r"^return value\[0\].*nested more than 100"):
        encode_value(_nested(MAX_NESTING + 1))


def test_a_worker_refuses_what_a_producer_would_refuse() -> None:
    """admit_message with a worker's max size: too large, nested too deep for the producer's
    check, or for the decoder itself — each a DecodeError saying which."""
    big = encode_message(Message(id="1", task="t", args=("x" * 500,)), 1 << 20)
    assert decode_message(big).args == ("x" * 500,)  # what `conveyor dlq show` reads
    assert admit_message(big, 1 << 20).args == ("x" * 500,)
    with pytest.raises(DecodeError, match=r"over this worker's task_message_max_size of 100"):
        admit_message(big, 100)
    deep = msgspec.json.encode({"id": "1", "task": "t", "args": [_nested(600)]})
    assert decode_message(deep).id == "1"
    with pytest.raises(DecodeError, match=r"args\[0\]\[0\].*nested more than 100"):
        admit_message(deep, 1 << 20)
    deeper = b'{"id":"1","task":"t","args":[' + b"[" * 5000 + b"]" * 5000 + b"]}"
    for decode in (decode_message, lambda body: admit_message(body, 1 << 20)):
        with pytest.raises(DecodeError, match="nested too deeply to decode"):
            decode(deeper)
