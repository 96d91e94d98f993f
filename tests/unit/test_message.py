from __future__ import annotations

import datetime
import decimal

import msgspec
import pytest

from conveyor.errors import DecodeError, EncodeError, MessageTooLarge
from conveyor.message import Message, decode_message, encode_message, encode_value


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
