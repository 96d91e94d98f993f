"""The message record and its JSON encoding.

A message is what one call asks for; brokers store its encoded form as an opaque `body`.
Encoding is strict JSON: only str, int, float (finite), bool, None, lists/tuples and dicts with
string keys. Anything else (datetime, Decimal, sets, model instances…) is refused at the call
site with the argument's path, rather than silently turned into a string that the task would
receive as a different type. Tuples arrive as lists, as with any JSON transport.

Nesting is bounded too: lists and dicts may nest at most `MAX_NESTING` levels inside one
argument (or return value, or canvas), far below the depth at which decoding (about 1,000
levels) or pickling a call for a process-pool child (about 500) gives up, so everything that is
accepted can be decoded, handed to a child and encoded again.

The body is versioned (`v`) so that a future format can be read side by side with this one; a
body with an unknown version, that is not JSON, that nests deeper than the limit or is larger
than the worker's `task_message_max_size`, raises DecodeError and the worker dead-letters it.

`Message` is a msgspec Struct rather than a dataclass: it is still a frozen, slotted record, and
msgspec validates field types while decoding, so a malformed body fails in one place.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import msgspec

from .canvas.nodes import ChainNode, ChordJoin, Node, SigNode
from .compression import DEFAULT_LIMIT, compress, decompress
from .errors import DecodeError, EncodeError, MessageTooLarge

PROTOCOL_VERSION = 1

#: How many levels lists and dicts may nest inside one argument, return value or canvas.
MAX_NESTING = 100


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One request to run a task. Times are seconds since the epoch."""

    id: str
    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    retries: int = 0
    eta: float | None = None
    # When the producer built it (its clock): with `eta`, when the call became due, for the
    # worker's queue-wait metric. Absent in messages of older producers.
    sent_at: float | None = None
    expires: float | None = None
    parent_id: str | None = None
    root_id: str | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    # Set by a worker that took a global rate-limit slot for this message and put it back
    # until that slot: the next delivery starts without taking another.
    throttled: bool = False
    # What runs after this call succeeds (the rest of a chain), and the chord whose header it
    # belongs to (see canvas/flow.py).
    chain: tuple[Node, ...] = ()
    chord: str | None = None
    join: ChordJoin | None = None  # what joining `chord` needs (absent in older messages)
    # Celery's link / link_error: what is sent when this call succeeds (with its result) or
    # fails for good (see canvas/callbacks.py). Absent in messages without them.
    link: tuple[Node, ...] = ()
    link_error: tuple[Node, ...] = ()
    # The caller's own headers (`apply_async(headers=...)`, and what before_task_publish
    # receivers added), delivered as `self.request.headers`: JSON values, never read by conveyor.
    headers: dict[str, Any] = msgspec.field(default_factory=dict)
    # Per-call options of apply_async (Celery's): `ignore_result` overrides the task's and the
    # setting's for this call; `shadow` is the name the call shows under in logs, events and
    # results (the task that runs is still `task`).
    ignore_result: bool | None = None
    shadow: str | None = None
    v: int = PROTOCOL_VERSION

    @property
    def links(self) -> Links:
        if not (self.link or self.link_error):
            return Links(self.chain, self.chord, self.join)
        origin = self if self.link_error else None  # an errback is given the failed call
        return Links(self.chain, self.chord, self.join, self.link, self.link_error, origin)

    @property
    def shown_name(self) -> str:
        """The name to show for this call: its `shadow`, else its task's name."""
        return self.shadow or self.task


@dataclass(frozen=True, slots=True)
class Links:
    """A call's place in a workflow: the steps after it, the chord it is a member of, and the
    callbacks (`link`) and errbacks (`link_error`) it sends when it ends. `origin` is the
    call's own message when it has errbacks, which are given its arguments."""

    chain: tuple[Node, ...] = ()
    chord: str | None = None
    join: ChordJoin | None = None
    link: tuple[Node, ...] = ()
    link_error: tuple[Node, ...] = ()
    origin: Message | None = None

    def __bool__(self) -> bool:
        return bool(self.chain or self.chord or self.link or self.link_error)


NO_LINKS = Links()


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """What a body a worker refused says about its call, read without its arguments (they are
    skipped, not built): its id, task and place in a workflow, so that the call and what follows
    it can be marked FAILURE instead of staying PENDING (see `identify`)."""

    id: str
    task: str
    chain: tuple[Node, ...] = ()
    chord: str | None = None
    join: ChordJoin | None = None
    link_error: tuple[Node, ...] = ()
    v: int = PROTOCOL_VERSION

    @property
    def links(self) -> Links:
        """Its place in a workflow (and its errbacks, which a refused call sends); none when
        the body is of another protocol version, whose workflows this release cannot read."""
        if self.v != PROTOCOL_VERSION:
            return NO_LINKS
        return Links(self.chain, self.chord, self.join, link_error=self.link_error)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)
_identity_decoder = msgspec.json.Decoder(Identity)
_any_decoder = msgspec.json.Decoder()


def new_task_id() -> str:
    """A random (version 4) UUID in its usual text form, as Celery's task ids are; built from
    16 random bytes directly, at less than half the cost of `str(uuid.uuid4())`."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_SCALARS = frozenset({str, int, bool, type(None)})


def check_json(value: Any, path: str, depth: int = 0) -> None:
    """Raise EncodeError naming `path` if `value` is not plain JSON data, or if its lists and
    dicts nest more than `MAX_NESTING` levels (`depth`: levels already entered above it)."""
    if not _plain(value, depth):
        _explain(value, path, depth)


def _plain(value: Any, depth: int) -> bool:
    """True when `value` passes `check_json`: the fast walk, building no paths (this runs on
    every argument of every call sent and admitted)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= MAX_NESTING:
        return False
    if kind is list or kind is tuple:
        for item in value:
            if type(item) not in _SCALARS and not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            if type(item) not in _SCALARS and not _plain(item, depth + 1):
                return False
        return True
    return False


def _explain(value: Any, path: str, depth: int) -> None:
    """Raise the EncodeError for what `_plain` refused, naming the path to it."""
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(value):
            raise EncodeError(f"{path} is {value!r}, which JSON cannot carry")
        return
    if kind is list or kind is tuple or kind is dict:
        if depth >= MAX_NESTING:
            raise _too_deep(path)
        if kind is not dict:
            for i, item in enumerate(value):
                _explain(item, f"{path}[{i}]", depth + 1)
            return
        for key, item in value.items():
            if type(key) is not str:
                raise EncodeError(f"{path} has key {key!r}; JSON object keys must be strings")
            _explain(item, f"{path}[{key!r}]", depth + 1)
        return
    raise EncodeError(
        f"{path} is a {kind.__module__}.{kind.__qualname__}, which JSON cannot carry; pass plain "
        "data (str, int, float, bool, None, list, dict) and rebuild the object inside the task"
    )


def _too_deep(path: str) -> EncodeError:
    shown = path if len(path) <= 80 else f"{path[:48]}…{path[-24:]}"
    return EncodeError(
        f"{shown} is nested more than {MAX_NESTING} lists/dicts deep, more than a message may "
        "carry; pass flatter data (or store it elsewhere and pass a reference)"
    )


def check_call(message: Message) -> None:
    """Refuse a message whose arguments (its own, or those of the calls after it: the rest of
    its chain, and what follows the chord it belongs to) or headers are not plain JSON data
    nested at most `MAX_NESTING` levels; the error names the argument."""
    _check_arguments(message.args, message.kwargs, "")
    if message.headers:
        check_json(message.headers, "headers")
    check_nodes(message.chain, "chain")
    check_nodes(message.link, "link")
    check_nodes(message.link_error, "link_error")
    if message.join is not None and message.join.then is not None:
        check_nodes(message.join.then, "join.then")


def check_nodes(nodes: tuple[Node, ...], path: str) -> None:
    """Refuse (EncodeError naming the argument, under `path`) a canvas whose calls' arguments
    are not plain JSON data, or that nests more than `MAX_NESTING` levels."""
    _check_nodes(nodes, path, 0)


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], prefix: str) -> None:
    for i, item in enumerate(args):
        check_json(item, f"{prefix}args[{i}]")
    for key, item in kwargs.items():
        check_json(item, f"{prefix}kwargs[{key!r}]")


def _check_nodes(nodes: tuple[Node, ...], path: str, depth: int) -> None:
    """The arguments of every call in a canvas, and the canvas's own nesting."""
    if depth >= MAX_NESTING:
        raise _too_deep(path)
    for i, node in enumerate(nodes):
        where = f"{path}[{i}]"
        if isinstance(node, SigNode):
            _check_arguments(node.args, node.kwargs, f"{where} ({node.task}) ")
            if node.headers:
                check_json(node.headers, f"{where} ({node.task}) headers")
            if node.link:
                _check_nodes(node.link, f"{where}.link", depth + 1)
            if node.link_error:
                _check_nodes(node.link_error, f"{where}.link_error", depth + 1)
        elif isinstance(node, ChainNode):
            _check_nodes(node.steps, f"{where}.steps", depth + 1)
        else:
            _check_nodes(node.members, f"{where}.members", depth + 1)


def encode_message(message: Message, max_size: int) -> bytes:
    """Encode `message`; refuse non-JSON or too deeply nested arguments (see `check_call`) and
    bodies larger than `max_size` bytes. (A body may then be compressed, see `compress_body`:
    the limit holds for it uncompressed, as the worker checks it.)"""
    check_call(message)
    body = _encoder.encode(message)
    if len(body) > max_size:
        raise MessageTooLarge(
            f"message for {message.task} is {len(body)} bytes, over the limit of {max_size} "
            "(setting task_message_max_size); store large data elsewhere and pass a reference"
        )
    return body


def decode_message(body: bytes, limit: int = DEFAULT_LIMIT) -> Message:
    """Decode a stored body (inflating it first when it was sent compressed, to at most
    `limit` bytes); raise DecodeError saying what is wrong with it."""
    try:
        text = decompress(body, limit)
    except DecodeError:
        raise DecodeError(
            f"compressed message body refused: it is damaged, or inflates past {limit} bytes "
            "(task_message_max_size)"
        ) from None
    try:
        message = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"undecodable message body: {exc}") from None
    except RecursionError:
        raise DecodeError(
            f"undecodable message body: nested too deeply to decode (conveyor's producers "
            f"refuse more than {MAX_NESTING} levels)"
        ) from None
    if message.v != PROTOCOL_VERSION:
        raise DecodeError(f"message protocol version {message.v} is not supported")
    return message


def compress_body(body: bytes, method: str | None) -> bytes:
    """`body` compressed with `method` (None, "gzip" or "zstd": apply_async's `compression=`)
    when that makes it smaller. Readers need nothing to know it: `decode_message` recognises a
    compressed body by its first bytes, as result values are (conveyor.compression)."""
    return compress(body, method, 0)


def plain_body(body: bytes) -> bytes:
    """A stored body as JSON text, inflated if it was sent compressed."""
    return decompress(body, DEFAULT_LIMIT)


def admit_message(body: bytes, max_size: int) -> Message:
    """Decode a stored body for a worker whose task_message_max_size is `max_size`: refuse
    (DecodeError, saying why) a body larger than that, one that does not decode, and one whose
    arguments a producer would refuse (see `check_call`), so that what a worker admits it can
    hand to a pool child and encode again (a retry)."""
    if len(body) > max_size:
        raise DecodeError(
            f"message body is {len(body)} bytes, over this worker's task_message_max_size of "
            f"{max_size}; give workers at least the producers' limit, or send smaller messages"
        )
    message = decode_message(body, max_size)
    try:
        check_call(message)
    except EncodeError as exc:
        raise DecodeError(f"message refused: {exc}") from None
    return message


#: How far `identify` inflates a compressed body: far past any message size limit, short of
#: what a hostile body could make a worker allocate.
_IDENTIFY_LIMIT = 64 * 1024 * 1024


def identify(body: object) -> Identity | None:
    """The identity of a stored body that was refused (see Identity), or None when even that
    cannot be read. Unlike `admit_message`, this reads bodies of any size and skips arguments
    of any depth: it only ever runs on a body that is being dead-lettered."""
    if not isinstance(body, bytes):
        return None
    try:
        return _identity_decoder.decode(decompress(body, _IDENTIFY_LIMIT))
    except (msgspec.DecodeError, DecodeError, RecursionError):
        return None


def encode_value(value: Any, path: str = "return value") -> bytes:
    """Encode a task's return value as JSON, refusing what JSON cannot carry."""
    check_json(value, path)
    return _encoder.encode(value)


def decode_value(data: bytes, limit: int = DEFAULT_LIMIT) -> Any:
    """Decode a stored return value (decompressing it first if it was stored compressed, to at
    most `limit` bytes: the reader's `result_max_size`)."""
    return _any_decoder.decode(decompress(data, limit))


class Arguments(msgspec.Struct, frozen=True):
    """A call's arguments as `result_extended` stores them (Outcome.arguments)."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)


_arguments_decoder = msgspec.json.Decoder(Arguments)


def encode_arguments(message: Message) -> bytes:
    """The message's args and kwargs for the result store (already checked to be JSON)."""
    return _encoder.encode(Arguments(message.args, message.kwargs))


def decode_arguments(data: bytes) -> Arguments:
    """Stored arguments back; raise DecodeError when they are not what conveyor wrote."""
    try:
        return _arguments_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"undecodable stored arguments: {exc}") from None
