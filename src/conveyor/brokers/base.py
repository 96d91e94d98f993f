"""The broker contract.

A broker stores **envelopes** — routing fields plus an opaque, already-encoded `body` — and hands
them to workers under **leases**. It never decodes a body: serialization stays out of brokers.

Guarantees every backend gives (the suite in `tests/contract/` checks each one):

* **Idempotent, atomic enqueue.** `enqueue` stores all of a batch or none of it. An id that is
  already stored — waiting, leased, dead, or acknowledged within the idempotency window — is a
  no-op, so a producer may safely send the same id twice (the scheduler relies on this).
* **Order.** `reserve` serves its queues in the order given — every due envelope of the first
  queue before any of the second — and within a queue hands out the highest `priority` first,
  then the earliest due time, then enqueue order. (The worker passes its queues in the order
  its slot group wants them drained: fixed for strict order, rotating for weighted.)
* **Delays live in storage.** A delayed envelope stays in the broker until it is due; workers
  never hold it. Delays are relative (`delay` seconds from the moment the broker stores it), so
  the broker's clock is the only clock that decides when anything is due or expired.
* **Leases and fencing.** Every grant of a lease carries a new fencing token, larger than any
  token granted before by this broker. `extend`, `ack`, `release` and `dead_letter` act only when
  the token is still the current one; with a stale token they change nothing and return False
  (or None), so a worker that lost its lease can never settle a message another worker now owns.
  A lease whose time has passed on the broker's clock is lost even before anyone else takes the
  message. `confirm` reads the same verdict without changing anything: workers ask it just
  before writing outcomes, so a holder resumed after its lease ran out writes none.
* **Redelivery.** A lease that is not extended expires; the envelope is then due again and its
  next delivery has a higher `attempt`. An envelope whose lease has expired (or was released as
  `Requeue.LOST`) `max_deliveries` times — it keeps killing its worker — is dead-lettered
  instead of delivered again.
* **At-most-once runs.** `begin` marks a leased envelope as started; if it is ever delivered
  again, that delivery says `begun=True`, so the worker records the cut-off run instead of
  running it a second time.
* **Revocation is stored.** `revoke` deletes a waiting envelope (and remembers its id like an
  acknowledged one, so a later enqueue of it is a no-op); a leased one is flagged, and every
  later `extend` or delivery of it carries the flag until it is settled.
* **Global rate limits.** `throttle` hands out start slots for a key, spaced by an interval, to
  every worker sharing the broker; concurrent callers never get the same slot.
* **Unreadable storage is one bad delivery.** A stored envelope whose fields the broker cannot
  read (a missing or NULL body, a priority or delivery limit that is not an integer: something
  other than conveyor wrote it) is leased like any other and handed out as a Delivery whose
  `defect` says what is wrong; its envelope carries what could be read (an empty body if the
  body could not be). Its neighbours in the batch are unaffected. The worker dead-letters it
  with that reason.
* **One event stream.** `publish_events` appends a batch of encoded events (opaque bodies)
  to the cluster's one event stream atomically and in order; publishers in any number of
  processes interleave whole batches and lose nothing. The stream keeps at most the newest
  `event_stream_limit` entries (`EVENT_STREAM_LIMIT` unless the broker was built with another):
  each write trims what fell off, at a cost that does not grow with the stream. `read_events`
  pages through it by opaque, increasing cursors; an entry is readable once its batch is
  stored, and entries become readable in cursor order (a reader never skips one that a slower
  publisher stores later).
* **Thread safety.** One broker object may be used from several threads of one process (the
  worker's loop, its settler and its lease keeper). Each process opens its own broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

DEFAULT_MAX_DELIVERIES = 5
#: Seconds an enqueued id is remembered, so that sending it again stores nothing (setting
#: task_idempotency_window overrides it).
DEFAULT_IDEMPOTENCY_WINDOW = 3600.0
#: Seconds the server-backed brokers keep the record of a worker that stopped heartbeating.
WORKER_RETENTION = 7 * 86400.0
#: Entries the event stream keeps (the newest); older ones are trimmed as new ones are written.
EVENT_STREAM_LIMIT = 10_000
#: A cursor before every entry: `read_events(STREAM_START, n)` reads from the oldest kept.
STREAM_START = "0"


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a broker stores for one message."""

    id: str
    queue: str
    body: bytes
    priority: int = 0
    delay: float = 0.0
    max_deliveries: int = DEFAULT_MAX_DELIVERIES


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's exclusive, time-limited claim on one envelope.

    `token` is the fencing token of this grant; `expires_at` is on the broker's clock.
    `revoked` says the message was revoked while leased (`terminate`: and its run must be
    killed); the holder must not start it, and records it as REVOKED.
    """

    message_id: str
    token: int
    expires_at: float
    revoked: bool = False
    terminate: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """An envelope handed to a worker: the envelope, its lease and the attempt number (1 for
    the first delivery, 2 after one redelivery, …). `begun` is True when an earlier delivery
    called `begin` (an at-most-once run started and was cut off). `defect`, when set, says
    why the stored envelope could not be read (see the module docstring): such a delivery is
    only ever dead-lettered."""

    envelope: Envelope
    lease: Lease
    attempt: int
    begun: bool = False
    defect: str | None = None


class Requeue(str, Enum):
    """Why a leased envelope goes back (`release`), which decides what is counted.

    RETRY      the task asked to run again: the next delivery is a new attempt.
    UNSTARTED  the worker gave it back without running it (rate limit, shutdown): the delivery
               is not counted, so the next one keeps this attempt number.
    LOST       the run was cut off (its process died): counts toward `max_deliveries` exactly
               like an expired lease, and dead-letters the envelope when it reaches it.
    """

    RETRY = "retry"
    UNSTARTED = "unstarted"
    LOST = "lost"


class RevokeOutcome(str, Enum):
    """What `revoke` did to one id."""

    REMOVED = "removed"  # it was waiting (or dead): deleted, it will never be delivered
    FLAGGED = "flagged"  # it is leased: the holder learns on its next renewal
    UNKNOWN = "unknown"  # not stored (not sent yet, or already finished): id remembered


@dataclass(frozen=True, slots=True)
class Revocation:
    """The result of revoking one id. `token` is a fresh fencing token, newer than any lease
    granted before the revoke, for writing the REVOKED outcome."""

    message_id: str
    outcome: RevokeOutcome
    token: int


class MessageState(str, Enum):
    """Where an envelope stands inside a broker (admin views only)."""

    READY = "ready"
    SCHEDULED = "scheduled"
    LEASED = "leased"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts for one queue (a due scheduled envelope counts as ready), and
    `oldest_ready_age`: seconds, on the broker's clock, since the earliest due time among its
    ready envelopes (how long the oldest one has waited to be leased; to the millisecond on
    Redis); 0.0 when none is ready. A redelivered envelope keeps its first due time; a
    released or redriven one is due from then. It is found per priority band (0-9, the
    priorities conveyor sends) through the indexes, so its cost does not grow with the
    backlog."""

    queue: str
    ready: int = 0
    scheduled: int = 0
    leased: int = 0
    dead: int = 0
    oldest_ready_age: float = 0.0


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An envelope as the admin calls show it."""

    envelope: Envelope
    state: MessageState
    attempts: int
    available_at: float
    reason: str | None = None
    last_error: str | None = None
    updated_at: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker publishes about itself when it starts and on every heartbeat."""

    name: str
    queues: tuple[str, ...]
    task_names: tuple[str, ...]
    pid: int
    started_at: float
    heartbeat_at: float = 0.0
    stopped_at: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of the event stream: its `cursor` (opaque; later entries have greater
    cursors, as strings too) and the encoded event `body`."""

    cursor: str
    body: bytes


def stream_cursor(position: int) -> str:
    """The cursor of the entry at `position` (1, 2, …) of a stream numbered by integers:
    zero-padded, so cursors compare as strings in stream order."""
    return f"{position:020d}"


def stream_position(cursor: str) -> int:
    """The position a cursor of `stream_cursor` (or STREAM_START) names."""
    if not cursor.isdigit():
        raise ValueError(
            f"not an event stream cursor of this broker: {cursor!r}; pass a cursor that "
            "read_events returned, or STREAM_START"
        )
    return int(cursor)


def last_cursor(broker: Broker) -> str:
    """The cursor to tail the event stream "from now": the newest entry's, or STREAM_START
    when the stream is empty (then the first entry ever published is the first one read)."""
    newest = broker.read_events(None, 1)
    return newest[-1].cursor if newest else STREAM_START


class Broker(Protocol):
    """Stores envelopes and leases them to workers. See the module docstring for guarantees."""

    # -- hot path ---------------------------------------------------------------------------
    def enqueue(self, envelopes: Sequence[Envelope]) -> list[bool]:
        """Store a batch atomically. Returns, per envelope, True if it was newly stored and
        False if its id was already known (an idempotent no-op)."""
        ...

    def reserve(
        self, queues: Sequence[str], limit: int, lease_for: float, wait: float = 0.0
    ) -> list[Delivery]:
        """Lease up to `limit` due envelopes from `queues`, in the order the queues are given
        (see Order), for `lease_for` seconds.

        Blocks at most `wait` seconds for one to become due; returns [] if none did. Envelopes
        whose lease expired are due again; one past `max_deliveries` is dead-lettered here.
        """
        ...

    def extend(self, leases: Sequence[Lease], lease_for: float) -> list[Lease | None]:
        """Push each lease's expiry to now + `lease_for`, in one call. None where the lease was
        lost (expired and re-granted, settled, or purged): its holder must stop settling."""
        ...

    def confirm(self, leases: Sequence[Lease]) -> list[bool]:
        """Whether each lease is still held, in one call: True where its token is the current
        grant of its message and it has not expired on the broker's clock — exactly the leases
        `extend`, `ack`, `release`, `dead_letter` and `begin` would act on at this moment. Only
        each lease's `message_id` and `token` are read (the stored expiry decides, not the
        caller's copy). Read-only: it extends nothing, so a lease confirmed may still run out
        a moment later; callers keep that window short (see docs/guarantees.md)."""
        ...

    def ack(self, leases: Sequence[Lease]) -> list[bool]:
        """Settle successfully: remove each envelope, remembering its id for the idempotency
        window. False where the token is stale (nothing changed)."""
        ...

    def release(
        self,
        lease: Lease,
        delay: float = 0.0,
        body: bytes | None = None,
        error: str | None = None,
        requeue: Requeue = Requeue.RETRY,
    ) -> bool:
        """Put a leased envelope back, due after `delay`, optionally with a new body (a retry
        carries its incremented retry count) and the last `error`. `requeue` says what is
        counted (see Requeue). False if the token is stale."""
        ...

    def begin(self, leases: Sequence[Lease]) -> list[bool]:
        """Mark leased envelopes as started by an at-most-once run (see the module docstring).
        False where the token is stale: the caller must not run that one."""
        ...

    def throttle(self, key: str, interval: float) -> float:
        """Take the next start slot of rate limit `key`: slots are `interval` seconds apart on
        the broker's clock, one caller each. Returns the seconds from now until the slot taken
        (0.0: start now). Atomic across every process sharing the broker."""
        ...

    def revoke(self, message_ids: Sequence[str], terminate: bool = False) -> list[Revocation]:
        """Revoke ids (see RevokeOutcome), durably. Idempotent: revoking twice changes
        nothing more."""
        ...

    def dead_letter(self, lease: Lease, reason: str) -> bool:
        """Move a leased envelope to the dead letters with `reason`. False if the token is
        stale."""
        ...

    # -- workers ----------------------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        """Insert or replace the record of a worker (by name). Used at start, on heartbeats
        and at stop; producers read the task names workers publish here."""
        ...

    def workers(self) -> list[WorkerInfo]:
        """Every worker record still kept (including stopped ones within the retention)."""
        ...

    # -- the event stream (see One event stream) --------------------------------------------
    def publish_events(self, bodies: Sequence[bytes]) -> None:
        """Append encoded events to the stream, all or none, in the order given; then trim the
        stream to its newest `event_stream_limit` entries. An empty batch does nothing. At most
        once: a server backend does not retry it after a lost connection (the batch may or may
        not have been stored; the error is raised), so a batch is never stored twice."""
        ...

    def read_events(self, after: str | None, limit: int) -> list[StreamEntry]:
        """At most `limit` entries, oldest first: those strictly after cursor `after`, or,
        when `after` is None, the newest `limit` entries (`limit` 0: none). A cursor older than
        the oldest entry kept reads from the oldest kept. Read-only. A string that is not a
        cursor of this broker raises ValueError."""
        ...

    # -- admin (CLI, dashboard; never on the hot path) --------------------------------------
    def queue_stats(self) -> list[QueueStats]:
        """Counts per queue for every queue that holds any envelope, sorted by name."""
        ...

    def list_messages(
        self, queue: str, state: MessageState | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredMessage]:
        """Envelopes of one queue in reserve order, optionally of one state."""
        ...

    def get_message(self, message_id: str) -> StoredMessage | None:
        """One stored envelope (not an acknowledged one), or None."""
        ...

    def purge_dead(self, queues: Sequence[str] | None = None, older_than: float = 0.0) -> int:
        """Delete dead letters (of `queues`, or of every queue) dead-lettered at least
        `older_than` seconds ago. Returns how many."""
        ...

    def redrive(self, message_ids: Sequence[str]) -> int:
        """Make dead-lettered envelopes ready again with fresh delivery counts. Returns how many
        moved."""
        ...

    def purge(self, queues: Sequence[str], include_dead: bool = False) -> int:
        """Delete ready and scheduled envelopes (and dead ones if asked) of `queues`. Leased
        envelopes are left to their workers. Returns how many were deleted."""
        ...

    def close(self) -> None:
        """Release connections. The broker is unusable afterwards."""
        ...
