"""The result-store contract.

A result store keeps one **outcome** per task id: its state, its encoded return value or error,
and timings. Guarantees every backend gives (checked by `tests/contract/`):

* **Fenced writes.** Every outcome carries the fencing `token` of the lease (or revocation)
  it was written under. `put` replaces the stored outcome of an id only when the new token is
  at least the stored one (or the stored one expired); otherwise it changes nothing and
  reports False. Tokens grow with every grant, so a worker that lost its lease can never
  overwrite what the message's new owner wrote, while one owner may move its own outcome on
  (STARTED, then SUCCESS). Writers without a lease (eager mode) use token 0.
* **Absence is PENDING.** `get` returns None for an id with no outcome, one that was forgotten,
  or one whose outcome expired (`result_expires`); readers show that as PENDING.
* **Expiry.** Each outcome expires `ttl` seconds after it was written (no expiry when the store
  was built with `ttl=None`); expired outcomes are invisible at once and deleted by
  `purge_expired`.
* **Chord joins.** `join_chord` adds a member id to a chord's set and returns the set's size,
  atomically: concurrent members of one chord are counted one after another, and a member
  joining twice (it was redelivered and ran again) is counted once. Joins expire with outcomes.
* **Opaque values.** The store never decodes `value`; serialization stays with the caller.
* **Thread safety.** One store object may be used from several threads of one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..states import TaskState


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception as text: its type's qualified name, message and formatted traceback."""

    type: str
    message: str
    traceback: str | None = None
    module: str = "builtins"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What is known about one task call."""

    task_id: str
    state: TaskState
    value: bytes | None = None
    error: ErrorInfo | None = None
    task_name: str | None = None
    queue: str | None = None
    worker: str | None = None
    attempt: int = 0
    retries: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    reason: str | None = None
    token: int = 0


class ResultStore(Protocol):
    """Keeps outcomes by task id. See the module docstring for guarantees."""

    def put(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Store a batch of outcomes atomically. Each replaces the earlier one for its id unless
        that one has a larger token; returns, per outcome, whether it was stored."""
        ...

    def get(self, task_id: str) -> Outcome | None:
        """The outcome of `task_id`, or None (PENDING)."""
        ...

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Outcome]:
        """Outcomes of the ids that have one."""
        ...

    def wait(self, task_ids: Sequence[str], timeout: float | None) -> dict[str, Outcome]:
        """Block until every id has a ready (terminal) outcome or `timeout` seconds pass
        (None: no limit). Returns the ready outcomes found."""
        ...

    def forget(self, task_ids: Sequence[str]) -> None:
        """Delete the outcomes of these ids. Idempotent."""
        ...

    def join_chord(self, chord_id: str, member_id: str) -> int:
        """Record that member `member_id` of chord `chord_id` succeeded; return how many
        distinct members have (see Chord joins)."""
        ...

    def purge_expired(self) -> int:
        """Delete expired outcomes (and chord joins); returns how many outcomes."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
