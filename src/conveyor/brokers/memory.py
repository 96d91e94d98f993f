"""In-process broker: the reference semantics of the broker contract.

Written for obviousness, not speed: every call takes one lock and scans. It backs tests and
eager mode (`task_always_eager`). It is not shared between processes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..clock import SYSTEM_CLOCK, Clock
from .base import (
    DEFAULT_IDEMPOTENCY_WINDOW,
    EVENT_STREAM_LIMIT,
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
    stream_cursor,
    stream_position,
)


@dataclass(slots=True)
class _Record:
    envelope: Envelope
    seq: int
    available_at: float
    state: MessageState = MessageState.READY
    token: int = 0
    lease_expires: float = 0.0
    deliveries: int = 0
    lost: int = 0
    reason: str | None = None
    last_error: str | None = None
    updated_at: float = 0.0
    begun: bool = False
    revoked: bool = False
    terminate: bool = False

    def lease(self) -> Lease:
        return Lease(self.envelope.id, self.token, self.lease_expires, self.revoked, self.terminate)

    def stored(self, state: MessageState) -> StoredMessage:
        return StoredMessage(
            self.envelope,
            state,
            self.deliveries,
            self.available_at,
            self.reason,
            self.last_error,
            self.updated_at,
        )

    def order(self) -> tuple[int, float, int]:
        return (-self.envelope.priority, self.available_at, self.seq)


class MemoryBroker:
    """Broker contract over plain dicts under one lock."""

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        idempotency_window: float = DEFAULT_IDEMPOTENCY_WINDOW,
        *,
        event_stream_limit: int = EVENT_STREAM_LIMIT,
    ) -> None:
        self.event_stream_limit = event_stream_limit
        self._events: deque[tuple[int, bytes]] = deque()  # (position, body), oldest first
        self._event_positions = itertools.count(1)
        self._clock = clock
        self._window = idempotency_window
        self._records: dict[str, _Record] = {}
        self._acked: dict[str, float] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._rates: dict[str, float] = {}
        self._seq = itertools.count(1)
        self._tokens = itertools.count(1)
        self._cond = threading.Condition()

    # -- hot path ---------------------------------------------------------------------------
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[bool]:
        now = self._clock.now()
        stored: list[bool] = []
        with self._cond:
            self._forget_old_acks(now)
            batch_ids: set[str] = set()
            for env in envelopes:
                known = env.id in self._records or env.id in self._acked or env.id in batch_ids
                stored.append(not known)
                batch_ids.add(env.id)
            for env, new in zip(envelopes, stored, strict=True):
                if new:
                    due = now + max(0.0, env.delay)
                    self._records[env.id] = _Record(env, next(self._seq), due, updated_at=now)
            self._cond.notify_all()
        return stored

    def reserve(
        self, queues: Sequence[str], limit: int, lease_for: float, wait: float = 0.0
    ) -> list[Delivery]:
        deadline = time.monotonic() + wait  # real time: a FakeClock never moves by itself
        with self._cond:
            while True:
                got = self._reserve_now(queues, limit, lease_for)
                remaining = deadline - time.monotonic()
                if got or remaining <= 0 or limit <= 0:
                    return got
                self._cond.wait(min(remaining, 0.05))

    def _reserve_now(self, queues: Sequence[str], limit: int, lease_for: float) -> list[Delivery]:
        now = self._clock.now()
        self._reclaim_expired(now)
        rank = {q: i for i, q in reversed(list(enumerate(queues)))}
        due = [
            r
            for r in self._records.values()
            if r.envelope.queue in rank and r.state is MessageState.READY and r.available_at <= now
        ]
        due.sort(key=lambda r: (rank[r.envelope.queue], *r.order()))
        out: list[Delivery] = []
        for rec in due[: max(0, limit)]:
            rec.state = MessageState.LEASED
            rec.token = next(self._tokens)
            rec.lease_expires = now + lease_for
            rec.deliveries += 1
            out.append(Delivery(rec.envelope, rec.lease(), rec.deliveries, rec.begun))
        return out

    def _reclaim_expired(self, now: float) -> None:
        for rec in self._records.values():
            if rec.state is MessageState.LEASED and rec.lease_expires <= now:
                self._count_lost(rec, now, "lease expired")

    @staticmethod
    def _count_lost(rec: _Record, now: float, how: str) -> None:
        rec.lost += 1
        rec.updated_at = now
        if rec.lost >= rec.envelope.max_deliveries and not rec.revoked:
            rec.state = MessageState.DEAD
            rec.reason = f"{how} {rec.lost} times (max_deliveries)"
        else:
            rec.state = MessageState.READY
            rec.available_at = min(rec.available_at, now)

    def _held(self, lease: Lease) -> _Record | None:
        rec = self._records.get(lease.message_id)
        if rec is None or rec.state is not MessageState.LEASED or rec.token != lease.token:
            return None
        if rec.lease_expires <= self._clock.now():
            return None
        return rec

    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        with self._cond:
            out: list[Lease | None] = []
            expires = self._clock.now() + lease_for
            for lease in leases:
                rec = self._held(lease)
                if rec is None:
                    out.append(None)
                    continue
                rec.lease_expires = expires
                out.append(rec.lease())
            return out

    def confirm(self, leases: Sequence[Lease]) -> list[bool]:
        with self._cond:
            return [self._held(lease) is not None for lease in leases]

    def ack(self, leases: Sequence[Lease]) -> list[bool]:
        with self._cond:
            now = self._clock.now()
            out = []
            for lease in leases:
                rec = self._held(lease)
                if rec is not None:
                    del self._records[lease.message_id]
                    self._acked[lease.message_id] = now
                out.append(rec is not None)
            return out

    def release(
        self,
        lease: Lease,
        delay: float = 0.0,
        body: bytes | None = None,
        error: str | None = None,
        requeue: Requeue = Requeue.RETRY,
    ) -> bool:
        with self._cond:
            rec = self._held(lease)
            if rec is None:
                return False
            now = self._clock.now()
            rec.last_error = error or rec.last_error
            if body is not None:
                rec.envelope = replace(rec.envelope, body=body)
            if requeue is Requeue.LOST:
                self._count_lost(rec, now, "run lost")
            else:
                rec.state = MessageState.READY
                rec.updated_at = now
                if requeue is Requeue.UNSTARTED:
                    rec.deliveries -= 1
            rec.available_at = now + max(0.0, delay)
            self._cond.notify_all()
            return True

    def dead_letter(self, lease: Lease, reason: str) -> bool:
        with self._cond:
            rec = self._held(lease)
            if rec is None:
                return False
            rec.state = MessageState.DEAD
            rec.reason = reason
            rec.updated_at = self._clock.now()
            return True

    def begin(self, leases: Sequence[Lease]) -> list[bool]:
        with self._cond:
            out = []
            for lease in leases:
                rec = self._held(lease)
                if rec is not None:
                    rec.begun = True
                out.append(rec is not None)
            return out

    def throttle(self, key: str, interval: float) -> float:
        with self._cond:
            now = self._clock.now()
            slot = max(self._rates.get(key, now), now)
            self._rates[key] = slot + interval
            return slot - now

    def revoke(self, message_ids: Sequence[str], terminate: bool = False) -> list[Revocation]:
        with self._cond:
            now = self._clock.now()
            out = []
            for mid in message_ids:
                rec = self._records.get(mid)
                if rec is not None and rec.state is MessageState.LEASED:
                    rec.revoked, rec.terminate = True, rec.terminate or terminate
                    outcome = RevokeOutcome.FLAGGED
                elif rec is not None:
                    del self._records[mid]
                    self._acked[mid] = now
                    outcome = RevokeOutcome.REMOVED
                else:
                    self._acked.setdefault(mid, now)
                    outcome = RevokeOutcome.UNKNOWN
                out.append(Revocation(mid, outcome, next(self._tokens)))
            return out

    # -- workers ----------------------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        with self._cond:
            self._workers[info.name] = info

    def workers(self) -> list[WorkerInfo]:
        with self._cond:
            return sorted(self._workers.values(), key=lambda w: w.name)

    # -- the event stream ------------------------------------------------------------------
    def publish_events(self, bodies: Sequence[bytes]) -> None:
        with self._cond:
            for body in bodies:
                self._events.append((next(self._event_positions), bytes(body)))
            while len(self._events) > max(0, self.event_stream_limit):
                self._events.popleft()

    def read_events(self, after: str | None, limit: int) -> list[StreamEntry]:
        start = None if after is None else stream_position(after)
        with self._cond:
            if limit <= 0 or not self._events:
                return []
            if start is None:
                chosen = list(self._events)[-limit:]
            else:  # positions are consecutive, so the first one after `start` is found by offset
                skip = max(0, start - self._events[0][0] + 1)
                chosen = list(itertools.islice(self._events, skip, skip + limit))
        return [StreamEntry(stream_cursor(n), body) for n, body in chosen]

    # -- admin ------------------------------------------------------------------------------
    def queue_stats(self) -> list[QueueStats]:
        with self._cond:
            now = self._clock.now()
            counts: dict[str, dict[MessageState, int]] = {}
            oldest: dict[str, float] = {}
            for rec in self._records.values():
                queue = rec.envelope.queue
                per = counts.setdefault(queue, dict.fromkeys(MessageState, 0))
                state = self._visible_state(rec, now)
                per[state] += 1
                if state is MessageState.READY:
                    oldest[queue] = min(oldest.get(queue, rec.available_at), rec.available_at)
            return [
                QueueStats(
                    q,
                    c[MessageState.READY],
                    c[MessageState.SCHEDULED],
                    c[MessageState.LEASED],
                    c[MessageState.DEAD],
                    max(0.0, now - oldest[q]) if q in oldest else 0.0,
                )
                for q, c in sorted(counts.items())
            ]

    @staticmethod
    def _visible_state(rec: _Record, now: float) -> MessageState:
        if rec.state is MessageState.READY and rec.available_at > now:
            return MessageState.SCHEDULED
        return rec.state

    def list_messages(
        self, queue: str, state: MessageState | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        with self._cond:
            now = self._clock.now()
            recs = sorted(
                (r for r in self._records.values() if r.envelope.queue == queue),
                key=_Record.order,
            )
            shown = [
                r.stored(self._visible_state(r, now))
                for r in recs
                if state is None or self._visible_state(r, now) is state
            ]
            return shown[offset : offset + limit]

    def get_message(self, message_id: str) -> StoredMessage | None:
        with self._cond:
            rec = self._records.get(message_id)
            return None if rec is None else rec.stored(self._visible_state(rec, self._clock.now()))

    def purge_dead(self, queues: Sequence[str] | None = None, older_than: float = 0.0) -> int:
        with self._cond:
            cutoff = self._clock.now() - older_than
            doomed = [
                mid
                for mid, r in self._records.items()
                if r.state is MessageState.DEAD
                and (queues is None or r.envelope.queue in queues)
                and r.updated_at <= cutoff
            ]
            for mid in doomed:
                del self._records[mid]
            return len(doomed)

    def redrive(self, message_ids: Sequence[str]) -> int:
        with self._cond:
            moved = 0
            now = self._clock.now()
            for mid in message_ids:
                rec = self._records.get(mid)
                if rec is not None and rec.state is MessageState.DEAD:
                    rec.state, rec.available_at, rec.lost, rec.reason = (
                        MessageState.READY,
                        now,
                        0,
                        None,
                    )
                    rec.begun, rec.updated_at = False, now
                    moved += 1
            self._cond.notify_all()
            return moved

    def purge(self, queues: Sequence[str], include_dead: bool = False) -> int:
        states = {MessageState.READY} | ({MessageState.DEAD} if include_dead else set())
        with self._cond:
            doomed = [
                mid
                for mid, r in self._records.items()
                if r.envelope.queue in queues and r.state in states
            ]
            for mid in doomed:
                del self._records[mid]
            return len(doomed)

    def close(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _forget_old_acks(self, now: float) -> None:
        if not self._acked:
            return
        cutoff = now - self._window
        for mid in [m for m, t in self._acked.items() if t < cutoff]:
            del self._acked[mid]
