"""Creating and migrating conveyor's PostgreSQL schema.

Migrations are the numbered files in `migrations/` (`0001_broker.sql`, …), applied in order,
each once; `conveyor_schema_version` records which ones a schema has. A fresh schema is built
by the same files, so "fresh" and "migrated" are the same path — and a test checks that a
schema upgraded one release at a time ends identical to one created at once.

Contract: `upgrade` is idempotent and safe to run from many processes at once — it takes a
transaction-scoped advisory lock per schema, and applies every missing migration in that one
transaction, so a schema is never left half-migrated.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._postgres import Listener, PgDatabase, PgTarget, parse_url, pool_wait
from .errors import ConfigurationError
from .guard import Guard

if TYPE_CHECKING:
    import psycopg

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS conveyor_schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped, in order."""
    found = []
    for entry in resources.files("conveyor.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return tuple(found)


def latest() -> int:
    return migrations()[-1].version


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    """The schema's version: 0 when the schema or its version table does not exist."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", [f'"{schema}".conveyor_schema_version']
    ).fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute(f'SELECT max(version) FROM "{schema}".conveyor_schema_version').fetchone()
    return int(got[0]) if got and got[0] is not None else 0


def upgrade(db: PgDatabase, to: int | None = None) -> list[Migration]:
    """Apply the missing migrations (up to version `to`, default all) in one transaction.
    Returns those applied."""
    schema = db.target.schema
    target = latest() if to is None else to
    with db.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"conveyor-schema:{schema}"])
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'SET LOCAL search_path TO "{schema}"')
        conn.execute(_VERSION_TABLE)
        have = current_version(conn, schema)
        applied = [m for m in migrations() if have < m.version <= target]
        for m in applied:
            conn.execute(m.sql.encode())
            conn.execute(
                "INSERT INTO conveyor_schema_version (version, name) VALUES (%s, %s)",
                [m.version, m.name],
            )
    return applied


def ensure_current(db: PgDatabase, auto: bool) -> None:
    """Check the schema on first use: migrate it when `auto`, else explain how."""
    with db.connection() as conn:
        have = current_version(conn, db.target.schema)
    if have == latest():
        return
    if have > latest():
        raise ConfigurationError(
            f"the schema {db.target.schema!r} at {db.target.shown} is at version {have}, newer "
            f"than this conveyor knows ({latest()}): upgrade conveyor on this machine"
        )
    if not auto:
        raise ConfigurationError(
            f"the schema {db.target.schema!r} at {db.target.shown} is at version {have}, this "
            f"conveyor needs {latest()}: run `conveyor -A <app> db upgrade` (automatic "
            "migration is off: database_create_tables_at_setup=False)"
        )
    upgrade(db)


@dataclass(frozen=True, slots=True)
class Opened:
    """What a PostgreSQL backend works with: its target, pool, LISTEN connection (started on
    first use) and connection guard."""

    target: PgTarget
    db: PgDatabase
    listener: Listener
    guard: Guard


def open_backend(
    url: str, role: str, max_size: int, auto_migrate: bool, retry_budget: float | None
) -> Opened:
    """Open `url` for a backend in `role` ("broker" or "result store"): a pool, the role's
    NOTIFY channel, a guard, and a schema made current (or an error saying how)."""
    target = parse_url(url)
    db = PgDatabase(target, max_size, f"conveyor-{role}", pool_wait(retry_budget))
    channel = target.channel if role == "broker" else target.results_channel
    guard = Guard(f"{role} at {target.shown}", url, db.errors, retry_budget)
    try:
        guard.call(ensure_current, db, auto_migrate)
    except BaseException:
        db.close()
        raise
    return Opened(target, db, Listener(target, channel), guard)
