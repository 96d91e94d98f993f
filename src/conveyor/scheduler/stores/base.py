"""The schedule-store contract.

A schedule store keeps the scheduler's shared state in the result backend's database: the
entries (as JSON text the store never decodes, see `scheduler/schedule.py`), each entry's
progress, and the leader lease. Guarantees every backend gives (checked by
`tests/contract/test_schedule_store_contract.py`):

* **Sync is atomic.** `sync` stores the `beat_schedule` entries (source CONFIG) in one
  transaction: new ones are added with `anchor` = now, changed ones get the new definition,
  and CONFIG entries no longer in the set are removed. Entries added at run time (source
  RUNTIME) are left alone. Progress (`last_fire`, counters) and `paused` survive a sync.
* **Progress is compare-and-set.** `advance` moves an entry's `last_fire` from the value the
  caller read to a later one and adds the counters — or, when another scheduler moved it
  first, changes nothing and returns False. So a fire is counted once even when two schedulers
  both believe they lead, and `last_fire` never goes backwards.
* **One leader.** `lead` takes the lease for `holder` when it is free or expired, renews it
  when `holder` has it, and otherwise reports who has it and for how long. Expiry is decided
  on the store's clock, so schedulers' clocks need not agree. `term` grows each time the lease
  changes hands. A holder whose lease lapsed is simply not the leader any more: it must stop
  firing, and anything it still sends is harmless because fires carry deterministic ids.
* **Thread safety.** One store object may be used from several threads of one process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Source(str, Enum):
    """Where an entry comes from: the app's `beat_schedule` (synced at every scheduler start)
    or a run-time `add` (kept until removed)."""

    CONFIG = "config"
    RUNTIME = "runtime"


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as stored.

    definition  Entry.to_json() text
    anchor      when the entry was first stored (epoch seconds): nothing is due before it
    last_fire   the scheduled time of the last fire sent or skipped, None before the first
    fires       fires sent; skipped: fires not sent because every scheduler was down
    """

    name: str
    definition: str
    source: Source
    paused: bool
    anchor: float
    last_fire: float | None
    fires: int
    skipped: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class Leadership:
    """Who holds the leader lease: `holder` (None when nobody does), the seconds until it
    expires, and the lease's term (grows on every change of holder)."""

    holder: str | None
    remaining: float
    term: int

    def held_by(self, holder: str) -> bool:
        return self.holder == holder and self.remaining > 0


class ScheduleStore(Protocol):
    """Entries, progress and the leader lease. See the module docstring for guarantees."""

    def sync(self, definitions: Mapping[str, str]) -> None:
        """Make the CONFIG entries exactly `definitions` (name -> definition), atomically."""
        ...

    def put(self, name: str, definition: str) -> bool:
        """Add or change a RUNTIME entry, keeping its progress. False (and nothing changed)
        when `name` is a CONFIG entry: that one is changed in `beat_schedule`."""
        ...

    def remove(self, name: str) -> bool:
        """Delete an entry with its progress. False if there was none."""
        ...

    def set_paused(self, name: str, paused: bool) -> bool:
        """Pause or resume an entry. False if there is none."""
        ...

    def entries(self) -> list[StoredEntry]:
        """Every entry, sorted by name."""
        ...

    def advance(
        self, name: str, expected: float | None, last_fire: float, fired: int, skipped: int
    ) -> bool:
        """If the entry's `last_fire` is still `expected`, set it to `last_fire` and add
        `fired` and `skipped` to its counters. False (nothing changed) otherwise."""
        ...

    def lead(self, holder: str, ttl: float) -> Leadership:
        """Take or renew the leader lease for `ttl` seconds if it is free, expired or already
        `holder`'s; return the lease as it now stands."""
        ...

    def resign(self, holder: str) -> None:
        """Give the lease up at once if `holder` has it (a clean stop: no wait for expiry)."""
        ...

    def leadership(self) -> Leadership:
        """The lease as it stands, without taking it."""
        ...

    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
        ...
