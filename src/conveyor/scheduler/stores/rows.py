"""Rows of the SQL schedule stores (SQLite and PostgreSQL) as records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Leadership, Source, StoredEntry


def entry_from_row(r: Sequence[Any]) -> StoredEntry:
    """A StoredEntry from the `entries` columns."""
    name, definition, source, paused, anchor, last_fire, fires, skipped, updated_at = r
    return StoredEntry(
        name=name,
        definition=definition,
        source=Source(source),
        paused=bool(paused),
        anchor=float(anchor),
        last_fire=None if last_fire is None else float(last_fire),
        fires=int(fires),
        skipped=int(skipped),
        updated_at=float(updated_at),
    )


def leadership_from_row(row: Sequence[Any] | None, now: float) -> Leadership:
    """The lease from (holder, expires_at, term), read at store time `now`."""
    if row is None:
        return Leadership(None, 0.0, 0)
    holder, expires_at, term = row
    remaining = float(expires_at) - now
    if holder is None or remaining <= 0:
        return Leadership(None, 0.0, int(term))
    return Leadership(holder, remaining, int(term))


def advance_params(
    name: str, expected: float | None, last_fire: float, fired: int, skipped: int
) -> dict[str, Any]:
    """The parameters of the `advance` statement (the same names in both SQL files)."""
    return {
        "name": name,
        "expected": expected,
        "last_fire": last_fire,
        "fired": fired,
        "skipped": skipped,
    }
