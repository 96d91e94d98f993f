"""Chord joins on SQLite read a count kept on write: a join costs the same whatever the size of
the chord's header, and files from earlier releases are counted from their member rows once.
(The join contract itself runs on every store in tests/contract/test_result_store_contract.py;
the PostgreSQL migration in tests/integration/test_postgres_schema.py.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor.clock import FakeClock
from conveyor.results.sqlite import SqliteResultStore

EARLIER_RELEASE = """
CREATE TABLE conveyor_chord_members (
    chord_id TEXT NOT NULL, member_id TEXT NOT NULL, expires_at REAL,
    PRIMARY KEY (chord_id, member_id)
);
"""


def _members(path: Path, chord: str, count: int, expires: float | None) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO conveyor_chord_members VALUES (?, ?, ?)",
            [(chord, f"m{i}", expires) for i in range(count)],
        )


def _steps(store: SqliteResultStore, chord: str, member: str) -> int:
    """How many SQLite virtual-machine instructions one join runs: a measure of its work
    that does not depend on the machine's speed."""
    conn = store._db.connection()
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        store.join_chord(chord, member)
    finally:
        conn.set_progress_handler(None, 1)
    return steps[0]


def test_a_join_costs_the_same_for_a_header_of_ten_or_of_ten_thousand(tmp_path: Path) -> None:
    store = SqliteResultStore(tmp_path / "c.db", ttl=3600.0)
    _members(tmp_path / "c.db", "small", 10, 1e12)
    _members(tmp_path / "c.db", "large", 10_000, 1e12)
    store.close()
    store = SqliteResultStore(tmp_path / "c.db", ttl=3600.0)  # rows written behind its back
    assert store.join_chord("small", "again") == 11 and store.join_chord("large", "again") == 10_001
    small, large = _steps(store, "small", "new"), _steps(store, "large", "new")
    assert small == large  # no work grows with the header
    assert store.join_chord("large", "new") == 10_002
    store.close()


def test_an_sqlite_file_from_an_earlier_release_counts_its_chords_in_flight(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(EARLIER_RELEASE)
    clock = FakeClock(1000.0)
    _members(path, "flight", 3, 1000.0 + 3600)  # a chord half joined when the release changed
    _members(path, "stale", 2, 500.0)  # one whose joins expired before the upgrade
    store = SqliteResultStore(path, ttl=3600.0, clock=clock)
    assert store.join_chord("flight", "m1") == 3  # joined before the upgrade: counted once
    assert store.join_chord("flight", "m3") == 4
    assert store.join_chord("stale", "m0") == 1  # its joins expired: it starts again
    again = SqliteResultStore(path, ttl=3600.0, clock=clock)  # a second open counts nothing again
    assert again.join_chord("flight", "m4") == 5
    clock.advance(3601.0)
    assert again.purge_expired() == 0
    with sqlite3.connect(path) as conn:
        left = conn.execute("SELECT count(*) FROM conveyor_chord_members").fetchone()[0]
        counts = conn.execute("SELECT count(*) FROM conveyor_chord_counts").fetchone()[0]
    assert (left, counts) == (0, 0)  # expired chords leave nothing behind
    store.close()
    again.close()
