"""conveyor's PostgreSQL schema: a schema migrated one release at a time equals a fresh one,
concurrent first uses migrate once, and with automatic migration off the error says what to
run and `conveyor db upgrade` does it. Against the real test server, in schemas of their own."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor._postgres import PgDatabase, parse_url
from conveyor.brokers.base import Envelope
from conveyor.pgschema import current_version, latest, migrations, upgrade

from .. import services
from .helpers import Remote, conveyor

CATALOG = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(s)s AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(s)s
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = %(s)s
UNION ALL
SELECT 'function ' || pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s
UNION ALL
SELECT 'relation ' || c.relkind::text || ' ' || c.relname || ' '
       || coalesce(array_to_string(c.reloptions, ','), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s
"""


@pytest.fixture
def schemas() -> Iterator[list[str]]:
    services.require_postgres()
    made: list[str] = []
    yield made
    for schema in made:
        services.drop_schema(schema)


def fresh(schemas: list[str]) -> PgDatabase:
    schema = f"sch_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    return PgDatabase(parse_url(services.postgres_url(schema)), max_size=4)


def catalog(database: PgDatabase) -> list[str]:
    schema = database.target.schema
    with database.connection() as conn:
        rows = conn.execute(CATALOG, {"s": schema}).fetchall()
    return sorted(r[0].replace(f"{schema}.", "<schema>.") for r in rows)


def test_a_schema_migrated_release_by_release_equals_a_fresh_one(schemas: list[str]) -> None:
    assert len(migrations()) >= 2  # the comparison below walks real intermediate versions
    at_once, stepwise = fresh(schemas), fresh(schemas)
    try:
        assert [m.version for m in upgrade(at_once)] == [m.version for m in migrations()]
        for m in migrations():
            assert [x.version for x in upgrade(stepwise, to=m.version)] == [m.version]
            with stepwise.connection() as conn:
                assert current_version(conn, stepwise.target.schema) == m.version
                if m.version == 1:  # a release in between had data in it
                    conn.execute(
                        "INSERT INTO conveyor_messages (id, queue, priority, state, available_at,"
                        " max_deliveries) VALUES ('kept', 'q', 0, 0, 0, 5)"
                    )
        assert upgrade(stepwise) == []  # idempotent
        assert catalog(stepwise) == catalog(at_once)
        assert len(catalog(at_once)) > 40  # the snapshot really holds the schema
        with stepwise.connection() as conn:
            assert conn.execute("SELECT id FROM conveyor_messages").fetchall() == [("kept",)]
    finally:
        at_once.close()
        stepwise.close()


def test_concurrent_first_uses_migrate_exactly_once(schemas: list[str]) -> None:
    from conveyor.brokers.postgres import PostgresBroker

    schema = f"sch_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    url = services.postgres_url(schema)
    errors: list[BaseException] = []
    opened: list[PostgresBroker] = []

    def first_use() -> None:
        try:
            opened.append(PostgresBroker(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert opened[0].enqueue([Envelope("one", "q", b"x")]) == [True]
    database = PgDatabase(parse_url(url))
    with database.connection() as conn:
        rows = conn.execute("SELECT version FROM conveyor_schema_version ORDER BY 1").fetchall()
    database.close()
    assert [r[0] for r in rows] == [m.version for m in migrations()]
    for b in opened:
        b.close()


def test_with_auto_migration_off_the_error_says_to_run_db_upgrade(
    schemas: list[str], tmp_path: Path
) -> None:
    schema = f"sch_{uuid.uuid4().hex[:10]}"
    schemas.append(schema)
    url = services.postgres_url(schema)
    app = Conveyor("x", broker=url, set_as_current=False)
    app.conf.database_create_tables_at_setup = False
    with pytest.raises(ConfigurationError, match=r"conveyor -A <app> db upgrade"):
        app.broker  # noqa: B018
    place = Remote(url, tmp_path)
    status = conveyor(place, "-A", "sample_app", "db", "status")
    assert status.returncode == 1 and f"version 0, needs upgrade to {latest()}" in status.stdout
    done = conveyor(place, "-A", "sample_app", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "applied 0001_broker, 0002_results" in done.stdout
    # the URL holds no password: it is shown whole, libpq's user name included (not masked)
    assert parse_url(url).shown == url and url in done.stdout
    again = conveyor(place, "-A", "sample_app", "db", "status")
    assert again.returncode == 0 and "up to date" in again.stdout
    app.broker.enqueue([Envelope("after", "q", b"x")])
    app.close()


def test_a_schema_newer_than_this_release_is_refused(schemas: list[str]) -> None:
    database = fresh(schemas)
    upgrade(database)
    with database.connection() as conn:
        conn.execute("INSERT INTO conveyor_schema_version (version, name) VALUES (9999, 'future')")
    app = Conveyor("x", broker=services.postgres_url(database.target.schema), set_as_current=False)
    with pytest.raises(ConfigurationError, match="newer than this conveyor"):
        app.broker  # noqa: B018
    database.close()


def test_db_commands_need_a_postgresql_url(tmp_path: Path) -> None:
    out = conveyor(tmp_path / "c.db", "-A", "sample_app", "db", "upgrade")
    assert out.returncode == 2 and "neither the broker nor the result backend" in out.stderr


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an environment without it gives
    app = Conveyor("x", broker=services.postgres_url("nowhere"), set_as_current=False)
    with pytest.raises(ConfigurationError, match=r'pip install "conveyor\[postgres\]"'):
        app.broker  # noqa: B018


def test_chords_in_flight_are_counted_once_by_the_chord_counts_migration(
    schemas: list[str],
) -> None:
    from conveyor.results.postgres import PostgresResultStore

    database = fresh(schemas)
    upgrade(database, to=5)  # the release before chord counts, with chords half joined
    with database.connection() as conn:
        conn.execute(
            "INSERT INTO conveyor_chord_members (chord_id, member_id, expires_at) "
            "SELECT 'flight', 'm' || g, 1e12 FROM generate_series(1, 3) g"
        )
        conn.execute("INSERT INTO conveyor_chord_members VALUES ('stale', 'm1', 1.0)")
    assert [m.version for m in upgrade(database, to=6)] == [6]
    store = PostgresResultStore(services.postgres_url(database.target.schema))
    try:
        assert store.join_chord("flight", "m1") == 3  # joined before the upgrade: counted once
        assert store.join_chord("flight", "m4") == 4
        assert store.join_chord("stale", "m1") == 1  # its joins had expired: it starts again
        with database.connection() as conn:  # a worker of the earlier release inserting
            conn.execute("INSERT INTO conveyor_chord_members VALUES ('flight', 'm5', 1e12)")
        assert store.join_chord("flight", "m6") == 6  # the trigger counted its insert too
    finally:
        store.close()
        database.close()
