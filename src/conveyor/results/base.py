"""The result-store contract.

A result store keeps one **outcome** per task id: its state, its encoded return value or error,
and timings. Guarantees every backend gives (checked by `tests/contract/`):

* **Fenced writes.** Every outcome carries the fencing `token` of the lease (or revocation)
  it was written under. `put` replaces the stored outcome of an id only when the new token is
  at least the stored one (or the stored one expired); otherwise it changes nothing and
  reports False. Tokens grow with every grant, so a worker that lost its lease can never
  overwrite what the message's new owner wrote, while one owner may move its own outcome on
  (STARTED, then SUCCESS). Writers without a lease (eager mode) use token 0. Under one
  token a bare STARTED never replaces another state (`replaces`): the worker's STARTED record
  is written by its writer thread and may land after what the running task wrote itself
  (`update_state`), which must stay; such a STARTED is dropped and reported not stored.
* **Absence is PENDING.** `get` returns None for an id with no outcome, one that was forgotten,
  or one whose outcome expired (`result_expires`); readers show that as PENDING.
* **Expiry.** Each outcome expires `ttl` seconds after it was written (no expiry when the store
  was built with `ttl=None`); expired outcomes are invisible at once and deleted by
  `purge_expired`.
* **Chord joins.** `join_chord` adds a member id to a chord's set and returns the set's size,
  atomically: concurrent members of one chord are counted one after another, and a member
  joining twice (it was redelivered and ran again) is counted once. A join's cost does not
  grow with the chord's size (the count is kept on write). A chord's joins expire together,
  `ttl` seconds after its latest join; a join after that starts the count again.
* **History.** `history` lists unexpired outcomes newest first by the time they were last
  written (ties by task id, descending), filtered by state, task name and a lower time bound,
  a page at a time: a page's `next` cursor, passed back as `before`, continues exactly after
  its last entry even while new outcomes are written. Workflow bookkeeping records
  (`WORKFLOW_RECORDS`) are not listed. Pages are not snapshots: an outcome rewritten between
  two pages moves to the front and may be seen again there.
* **Opaque values.** The store never decodes `value`; serialization stays with the caller.
* **Storable records.** `ErrorInfo` and `Outcome` make themselves storable when built, so no
  put fails on what a task produced: text that is not valid Unicode (lone surrogates, as
  `os.listdir` gives for undecodable bytes) or holds NUL (which PostgreSQL text refuses) is
  kept with those characters written as backslash escapes (`storable_text`), and `attempt` and
  `retries` are clamped to 0..`MAX_COUNT` (the narrowest column that holds them). Every store
  gets and returns the same text.
* **Thread safety.** One store object may be used from several threads of one process.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..states import TaskState

#: The largest `attempt` / `retries` every store keeps (PostgreSQL `integer` columns).
MAX_COUNT = 2**31 - 1


def storable_traceback(exc: BaseException) -> str:
    """`exc` with its traceback, as `storable_text` keeps it: for log lines, which a stream
    (or a test runner's report) that only takes UTF-8 would refuse whole otherwise."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return storable_text("".join(lines).rstrip())


def storable_text(text: str) -> str:
    """`text` as every store can keep it: characters UTF-8 cannot encode (lone surrogates) and
    NUL are written as backslash escapes. A surrogate standing for an undecodable byte (Python's
    `surrogateescape`, used for file names) is shown as that byte (`\\xff`)."""
    if text.isascii() and "\x00" not in text:
        return text  # the common case, checked cheaply
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # surrogates that stand for no byte
            raw = text.encode("utf-8", "backslashreplace")
        text = raw.decode("utf-8", "backslashreplace")
    return text.replace("\x00", "\\x00")


def _storable(text: str | None) -> str | None:
    return None if text is None else storable_text(text)


def _plain(text: str | None) -> bool:
    """True when `text` is storable as it is, by a cheap check that covers most text."""
    return text is None or (text.isascii() and "\x00" not in text)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An exception as text: its type's qualified name, message and formatted traceback.
    Built storable (see the module docstring)."""

    type: str
    message: str
    traceback: str | None = None
    module: str = "builtins"

    def __post_init__(self) -> None:
        for name in ("type", "message", "traceback", "module"):
            value = getattr(self, name)
            safe = _storable(value)
            if safe is not value:
                object.__setattr__(self, name, safe)


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
    arguments: bytes | None = None  # JSON {"args": […], "kwargs": {…}}; only with result_extended
    # A state name of the task's own (`update_state(state="PROGRESS")`); `state` is then
    # STARTED, which is how everything but the reader treats it (running, not ready).
    custom_state: str | None = None

    def __post_init__(self) -> None:
        """Storable text and counts (see the module docstring); ids are kept as given. Runs
        for every outcome a worker writes, so the common case is checked inline."""
        if not (
            _plain(self.task_name)
            and _plain(self.queue)
            and _plain(self.worker)
            and _plain(self.reason)
            and _plain(self.custom_state)
        ):
            for name in ("task_name", "queue", "worker", "reason", "custom_state"):
                object.__setattr__(self, name, _storable(getattr(self, name)))
        if not (0 <= self.attempt <= MAX_COUNT and 0 <= self.retries <= MAX_COUNT):
            object.__setattr__(self, "attempt", min(max(self.attempt, 0), MAX_COUNT))
            object.__setattr__(self, "retries", min(max(self.retries, 0), MAX_COUNT))

    @property
    def state_name(self) -> str:
        """The state as readers see it and stores keep it: the task's own name for a custom
        state, else the TaskState's name."""
        return self.custom_state if self.custom_state is not None else self.state.value


def replaces(new: Outcome, old: Outcome) -> bool:
    """Whether `new` replaces `old`, the live outcome stored for its id (see Fenced writes):
    a larger token always does, a smaller never; under the same token anything does but a
    bare STARTED over another state."""
    if new.token != old.token:
        return new.token > old.token
    return new.state_name != TaskState.STARTED.value or old.state_name == TaskState.STARTED.value


def state_from_name(name: str) -> tuple[TaskState, str | None]:
    """A stored state name as (state, custom_state): a name that is not one of TaskState's
    is a task's custom state, which counts as STARTED."""
    try:
        return TaskState(name), None
    except ValueError:
        return TaskState.STARTED, name


#: Pseudo-task names of what workflows keep in the result store (a chord's description, a
#: saved GroupResult): stored like outcomes, never listed as history.
CHORD_RECORD = "conveyor.chord"
GROUP_RECORD = "conveyor.group"
WORKFLOW_RECORDS = frozenset({CHORD_RECORD, GROUP_RECORD})


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A position in history: just after the outcome stored at `stored_at` with `task_id`.
    Shown to users as text (`str()`), read back with `parse`."""

    stored_at: float
    task_id: str

    def __str__(self) -> str:
        return f"{self.stored_at!r}/{self.task_id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        stamp, _, task_id = text.partition("/")
        try:
            if task_id:
                return cls(float(stamp), task_id)
        except ValueError:
            pass
        raise ValueError(f"not a history cursor: {text!r} (copy the one printed after a page)")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which outcomes `history` lists. `since`: written at or after this time (epoch seconds
    on the store's clock); `before`: the `next` cursor of the previous page."""

    state: TaskState | None = None
    task_name: str | None = None
    since: float | None = None
    before: Cursor | None = None
    limit: int = 50

    def admits(self, stored_at: float, outcome: Outcome) -> bool:
        """Whether one outcome belongs in the answer (for stores that filter in Python)."""
        if outcome.task_name in WORKFLOW_RECORDS:
            return False
        if self.state is not None and outcome.state_name != self.state.value:  # as SQL filters
            return False
        if self.task_name is not None and outcome.task_name != self.task_name:
            return False
        if self.since is not None and stored_at < self.since:
            return False
        return self.before is None or Cursor(stored_at, outcome.task_id) < self.before


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One listed outcome and when it was last written (the store's clock)."""

    stored_at: float
    outcome: Outcome

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.stored_at, self.outcome.task_id)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Up to `limit` entries, newest first; `next` continues after them (None: no more)."""

    entries: tuple[HistoryEntry, ...] = ()
    next: Cursor | None = field(default=None)

    @classmethod
    def of(cls, found: Sequence[HistoryEntry], limit: int) -> HistoryPage:
        """The page from up to `limit + 1` matching entries, newest first: the extra one
        only tells that there is more."""
        page = tuple(found[:limit])
        more = len(found) > limit and bool(page)
        return cls(page, page[-1].cursor if more else None)


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

    def history(self, query: HistoryQuery) -> HistoryPage:
        """A page of stored outcomes, newest first (see History)."""
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
