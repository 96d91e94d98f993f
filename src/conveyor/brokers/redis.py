"""Redis broker: every operation is one Lua script in `redis_lua/` (its file opens with the keys
it touches; `_prelude.lua` has the whole key layout), so each is atomic on the server.

Time comes from the Redis server (`TIME` inside the scripts) unless a clock is injected (tests
pass a FakeClock), so every producer and worker shares one clock whatever their machines say.

Idle workers do not poll: `reserve` blocks in BLPOP on the queues' wake lists, which enqueue,
release and redrive push to, bounded by the time until the next scheduled message or lease
expiry of those queues, so delayed messages and expired leases are picked up when they fall due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from .._redis import Scripts, client_from_url, transient_errors
from .._urls import safe_url
from ..clock import SYSTEM_CLOCK, Clock
from ..guard import Guard, guarded
from ..redis_persistence import warn_if_not_persistent
from .base import (
    DEFAULT_IDEMPOTENCY_WINDOW,
    DEFAULT_MAX_DELIVERIES,
    EVENT_STREAM_LIMIT,
    WORKER_RETENTION,
    Delivery,
    Envelope,
    Lease,
    MessageState,
    QueueStats,
    Requeue,
    Revocation,
    RevokeOutcome,
    StoredMessage,
    StreamEntry,
    WorkerInfo,
)

_SCRIPTS = (
    "enqueue",
    "reserve",
    "extend",
    "confirm",
    "ack",
    "release",
    "dead_letter",
    "begin",
    "throttle",
    "revoke",
    "register_worker",
    "queue_stats",
    "queue_ids",
    "redrive",
    "purge",
    "purge_dead",
    "publish_events",
)
_STATES = {
    b"r": MessageState.READY,
    b"s": MessageState.SCHEDULED,
    b"l": MessageState.LEASED,
    b"x": MessageState.DEAD,
}
_LETTERS = {state: letter.decode() for letter, state in _STATES.items()}
log = logging.getLogger("conveyor.brokers.redis")
_MIN_BLOCK = 0.005  # BLPOP's timeout 0 means "for ever"


class RedisBroker:
    """Broker contract on one Redis database (see the module docstring)."""

    def __init__(
        self,
        url: str,
        clock: Clock = SYSTEM_CLOCK,
        idempotency_window: float = DEFAULT_IDEMPOTENCY_WINDOW,
        retry_budget: float | None = 10.0,
        event_stream_limit: int = EVENT_STREAM_LIMIT,
    ) -> None:
        self.event_stream_limit = event_stream_limit
        self._client, self.prefix = client_from_url(url)
        self.shown = safe_url(url)
        self.guard = Guard(f"broker at {self.shown}", url, transient_errors(), retry_budget)
        self._scripts = Scripts(self._client, "conveyor.brokers.redis_lua", _SCRIPTS)
        self._clock = clock
        self._window = idempotency_window
        warn_if_evicting(self._client)
        warn_if_not_persistent(self._client, self.shown)

    def __repr__(self) -> str:
        return f"<RedisBroker {self.shown}>"

    def _now(self) -> str:
        """ARGV[1] of every script: "" makes the script read the server's clock."""
        return "" if self._clock is SYSTEM_CLOCK else repr(self._clock.now())

    def _run(self, script: str, *args: Any) -> Any:
        return self._scripts(script, self.prefix, [self._now(), *args])

    # -- hot path ---------------------------------------------------------------------------
    @guarded
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[bool]:
        if not envelopes:
            return []
        args: list[Any] = [repr(self._window)]
        for e in envelopes:
            args += [e.id, e.queue, e.priority, repr(max(0.0, e.delay)), e.max_deliveries, e.body]
        return [bool(x) for x in self._run("enqueue", *args)]

    @guarded
    def reserve(
        self, queues: Sequence[str], limit: int, lease_for: float, wait: float = 0.0
    ) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        queues = list(dict.fromkeys(queues))
        deadline = time.monotonic() + max(0.0, wait)
        wake_keys = [f"{self.prefix}:wake:{q}" for q in queues]
        while True:
            reply = self._run("reserve", limit, repr(lease_for), *queues)
            if reply[0] != b"":
                return _deliveries(reply)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            block = remaining if reply[1] == b"" else min(remaining, float(reply[1]))
            self._client.blpop(wake_keys, timeout=max(_MIN_BLOCK, block))

    @guarded
    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        if not leases:
            return []
        args: list[Any] = [repr(lease_for)]
        for x in leases:
            args += [x.message_id, x.token]
        reply = self._run("extend", *args)
        expires = float(reply[0])
        return [
            None
            if flags == b"lost"
            else Lease(x.message_id, x.token, expires, flags[:1] == b"1", flags[1:] == b"1")
            for x, flags in zip(leases, reply[1:], strict=True)
        ]

    @guarded
    def confirm(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        args: list[Any] = []
        for x in leases:
            args += [x.message_id, x.token]
        return [bool(v) for v in self._run("confirm", *args)]

    @guarded
    def ack(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        args: list[Any] = [repr(self._window)]
        for x in leases:
            args += [x.message_id, x.token]
        return [bool(v) for v in self._run("ack", *args)]

    @guarded
    def release(
        self,
        lease: Lease,
        delay: float = 0.0,
        body: bytes | None = None,
        error: str | None = None,
        requeue: Requeue = Requeue.RETRY,
    ) -> bool:
        return bool(
            self._run(
                "release",
                lease.message_id,
                lease.token,
                repr(max(0.0, delay)),
                body if body is not None else b"",
                error or "",
                int(requeue is Requeue.LOST),
                int(requeue is Requeue.UNSTARTED),
            )
        )

    @guarded
    def dead_letter(self, lease: Lease, reason: str) -> bool:
        return bool(self._run("dead_letter", lease.message_id, lease.token, reason))

    @guarded
    def begin(self, leases: Sequence[Lease]) -> list[bool]:
        if not leases:
            return []
        args: list[Any] = []
        for x in leases:
            args += [x.message_id, x.token]
        return [bool(v) for v in self._run("begin", *args)]

    @guarded
    def throttle(self, key: str, interval: float) -> float:
        return max(0.0, float(self._run("throttle", key, repr(interval))))

    @guarded
    def revoke(self, message_ids: Sequence[str], terminate: bool = False) -> list[Revocation]:
        if not message_ids:
            return []
        reply = self._run("revoke", int(terminate), repr(self._window), *message_ids)
        return [
            Revocation(mid, RevokeOutcome(reply[2 * i].decode()), int(reply[2 * i + 1]))
            for i, mid in enumerate(message_ids)
        ]

    # -- workers ----------------------------------------------------------------------------
    @guarded
    def register_worker(self, info: WorkerInfo) -> None:
        self._run(
            "register_worker",
            info.name,
            msgspec.json.encode(info),
            repr(info.heartbeat_at),
            repr(WORKER_RETENTION),
        )

    @guarded
    def workers(self) -> list[WorkerInfo]:
        records = self._client.hgetall(f"{self.prefix}:w")
        return sorted(
            (msgspec.json.decode(v, type=WorkerInfo) for v in records.values()),
            key=lambda w: w.name,
        )

    # -- the event stream ------------------------------------------------------------------
    # Not guarded: a retry after a lost reply would store the batch twice (events are at most
    # once; the publisher drops a batch that fails).
    def publish_events(self, bodies: Sequence[bytes]) -> None:
        if bodies:
            self._run("publish_events", max(0, self.event_stream_limit), *bodies)

    @guarded
    def read_events(self, after: str | None, limit: int) -> list[StreamEntry]:
        if limit <= 0:
            return []
        key = f"{self.prefix}:events"
        raw: Any
        if after is None:
            raw = self._client.xrevrange(key, "+", "-", count=limit)
            raw = raw[::-1]
        else:
            raw = self._client.xrange(key, f"({_stream_id(after)}", "+", count=limit)
        return [StreamEntry(_stream_cursor(sid), fields[b"b"]) for sid, fields in raw]

    # -- admin ------------------------------------------------------------------------------
    @guarded
    def queue_stats(self) -> list[QueueStats]:
        reply = self._run("queue_stats")
        stats = []
        for i in range(0, len(reply), 6):
            ready, scheduled, leased, dead = (int(v) for v in reply[i + 1 : i + 5])
            age = float(reply[i + 5])
            stats.append(QueueStats(reply[i].decode(), ready, scheduled, leased, dead, age))
        return sorted(stats, key=lambda s: s.queue)

    @guarded
    def list_messages(
        self, queue: str, state: MessageState | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        """Reads every id of the queue in that state (admin path), then sorts them in reserve
        order."""
        letter = "" if state is None else _LETTERS[state]
        ids = [i.decode() for i in self._run("queue_ids", queue, letter)]
        found = [m for m in self._fetch(ids) if m is not None]
        found.sort(key=lambda m: (-m[0].envelope.priority, m[0].available_at, m[1]))
        return [m for m, _ in found[offset : offset + limit]]

    @guarded
    def get_message(self, message_id: str) -> StoredMessage | None:
        (found,) = self._fetch([message_id])
        return None if found is None else found[0]

    def _fetch(self, ids: Sequence[str]) -> list[tuple[StoredMessage, int] | None]:
        pipe = self._client.pipeline(transaction=False)
        for mid in ids:
            pipe.hgetall(f"{self.prefix}:m:{mid}")
        now = self._clock.now() if self._clock is not SYSTEM_CLOCK else time.time()
        return [_stored(mid, h, now) for mid, h in zip(ids, pipe.execute(), strict=True)]

    @guarded
    def purge_dead(self, queues: Sequence[str] | None = None, older_than: float = 0.0) -> int:
        return int(self._run("purge_dead", repr(older_than), *(queues or ())))

    @guarded
    def redrive(self, message_ids: Sequence[str]) -> int:
        return int(self._run("redrive", *message_ids)) if message_ids else 0

    @guarded
    def purge(self, queues: Sequence[str], include_dead: bool = False) -> int:
        return int(self._run("purge", int(include_dead), *queues)) if queues else 0

    def close(self) -> None:
        self._scripts.close()
        self._client.close()


def warn_if_evicting(client: Any) -> None:
    """Warn when the server may evict keys that hold messages (allkeys-* policies): an evicted
    queue key is a lost message. Servers that refuse CONFIG (managed ones) are not checked."""
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "")
    except Exception as exc:  # CONFIG may be renamed or forbidden
        log.debug("could not read maxmemory-policy: %s", exc)
        return
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy.startswith("allkeys"):
        log.warning(
            "Redis maxmemory-policy is %s: under memory pressure the server may evict queue "
            "keys, losing messages; set it to noeviction (or a volatile-* policy)",
            policy,
        )


def _stream_cursor(stream_id: bytes) -> str:
    """A stream entry id ("<ms>-<seq>") as a cursor that sorts as a string in stream order."""
    ms, seq = stream_id.decode().split("-")
    return f"{int(ms):015d}-{int(seq):020d}"


def _stream_id(cursor: str) -> str:
    """The stream entry id a cursor names (STREAM_START "0": before every entry)."""
    ms, _, seq = cursor.partition("-")
    if not ms.isdigit() or not (seq.isdigit() or seq == ""):
        raise ValueError(
            f"not an event stream cursor of this broker: {cursor!r}; pass a cursor that "
            "read_events returned, or STREAM_START"
        )
    return f"{int(ms)}-{int(seq or 0)}"


def _deliveries(reply: list[Any]) -> list[Delivery]:
    token, expires = int(reply[0]), float(reply[1])
    return [_delivery(reply[i : i + 9], token, expires) for i in range(2, len(reply), 9)]


def _delivery(fields: list[Any], token: int, expires: float) -> Delivery:
    """One granted envelope. A message hash with a field missing or unreadable (written by
    something other than conveyor) gives a delivery with a `defect`, not an error for the whole
    batch (see the broker contract)."""
    mid, queue, priority, body, max_deliveries, deliveries, begun, revoked, terminate = fields
    message_id = mid.decode("utf-8", "replace")
    lease = Lease(message_id, token, expires, revoked == b"1", terminate == b"1")
    problems: list[str] = []
    envelope = Envelope(
        message_id,
        queue.decode(),
        body if isinstance(body, bytes) else b"",
        _field_int(priority, "p (priority)", 0, problems),
        0.0,
        _field_int(max_deliveries, "md (max_deliveries)", DEFAULT_MAX_DELIVERIES, problems),
    )
    if body is None:
        problems.insert(0, "field b (body) is missing")
    defect = f"unreadable message hash: {'; '.join(problems)}" if problems else None
    return Delivery(envelope, lease, int(deliveries), begun == b"1", defect)


def _field_int(value: bytes | None, name: str, default: int, problems: list[str]) -> int:
    """A hash field that must hold an integer; `default`, and a problem noted, when it does
    not."""
    if value is None:
        problems.append(f"field {name} is missing")
        return default
    try:
        return int(value)
    except ValueError:
        problems.append(f"field {name} is {value[:40]!r}, not an integer")
        return default


def _int_or(value: bytes | None, default: int) -> int:
    try:
        return default if value is None else int(value)
    except ValueError:
        return default


def _float_or(value: bytes | None, default: float) -> float:
    try:
        return default if not value else float(value)
    except ValueError:
        return default


def _stored(mid: str, h: dict[bytes, bytes], now: float) -> tuple[StoredMessage, int] | None:
    """The admin view of one message hash; fields that cannot be read show as their defaults
    (such a message is dead-lettered with the reason when it is reserved)."""
    state = _STATES.get(h.get(b"s", b""))
    if state is None:
        return None
    available_at = _float_or(h.get(b"at"), 0.0)
    if state is MessageState.SCHEDULED and available_at <= now:
        state = MessageState.READY
    envelope = Envelope(
        mid,
        h.get(b"q", b"").decode("utf-8", "replace"),
        h.get(b"b", b""),
        _int_or(h.get(b"p"), 0),
        0.0,
        _int_or(h.get(b"md"), 1),
    )
    text = {
        k: (h[k].decode("utf-8", "replace") or None) if k in h else None for k in (b"rs", b"er")
    }
    message = StoredMessage(
        envelope,
        state,
        _int_or(h.get(b"d"), 0),
        available_at,
        text[b"rs"],
        text[b"er"],
        _float_or(h.get(b"u"), available_at),  # absent until it first changes state
    )
    return message, _int_or(h.get(b"n"), 0)
