"""Writing straight into a broker's storage, as a foreign or faulty writer could: for the tests of
what brokers and workers do with a malformed stored message (contract suite, storage fuzz).

`spoil(broker, id, field, value)` overwrites one stored field of an envelope — `body`,
`priority` or `max_deliveries` — with any value, or removes it (`None`: NULL in SQL, the hash
field deleted in Redis); on Redis, `spoil(broker, id, "record", None)` deletes the whole message
hash. `make_due(broker, id, queue)` makes a delayed envelope due now, so a test can store a
message delayed (no worker touches it), spoil it, then hand it to a live worker.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from conveyor.brokers.base import Broker

from . import services

#: The logical field -> (SQL column, Redis hash field).
FIELDS = {
    "body": ("body", "b"),
    "priority": ("priority", "p"),
    "max_deliveries": ("max_deliveries", "md"),
}


def kind_of(broker: Broker) -> str:
    """The broker's backend name: memory, sqlite, redis or postgres."""
    return type(broker).__name__.removesuffix("Broker").lower()


def spoil(broker: Broker, message_id: str, field: str, value: Any) -> None:
    kind = kind_of(broker)
    if field == "record":
        if kind != "redis" or value is not None:
            raise ValueError("only a Redis message hash can be removed whole (record=None)")
        broker._client.delete(f"{broker.prefix}:m:{message_id}")  # type: ignore[attr-defined]
        return
    column, hash_field = FIELDS[field]
    if kind == "sqlite":
        _sqlite(
            broker, f"UPDATE conveyor_messages SET {column} = ? WHERE id = ?", value, message_id
        )
    elif kind == "postgres":
        _postgres(
            broker,
            f"UPDATE {{}}.conveyor_messages SET {column} = %s WHERE id = %s",
            value,
            message_id,
        )
    elif kind == "redis":
        client, key = broker._client, f"{broker.prefix}:m:{message_id}"  # type: ignore[attr-defined]
        if value is None:
            client.hdel(key, hash_field)
        else:
            client.hset(key, hash_field, value)
    else:
        raise ValueError(f"the {kind} broker has no storage a test can write into")


def make_due(broker: Broker, message_id: str, queue: str) -> None:
    """Make a delayed (scheduled) envelope due at once; the broker promotes it as usual."""
    kind = kind_of(broker)
    if kind == "sqlite":
        _sqlite(
            broker, "UPDATE conveyor_messages SET available_at = ? WHERE id = ?", 0.0, message_id
        )
    elif kind == "postgres":
        _postgres(
            broker,
            "UPDATE {}.conveyor_messages SET available_at = %s WHERE id = %s",
            0.0,
            message_id,
        )
    elif kind == "redis":
        client, prefix = broker._client, broker.prefix  # type: ignore[attr-defined]
        client.hset(f"{prefix}:m:{message_id}", "at", "0")
        client.zadd(f"{prefix}:s:{queue}", {message_id: 0})
    else:
        raise ValueError(f"the {kind} broker has no storage a test can write into")


def _sqlite(broker: Broker, statement: str, *params: Any) -> None:
    conn = sqlite3.connect(broker.path, timeout=30)  # type: ignore[attr-defined]
    try:
        with conn:
            assert conn.execute(statement, params).rowcount == 1
    finally:
        conn.close()


def _postgres(broker: Broker, statement: str, *params: Any) -> None:
    import psycopg
    from psycopg import sql

    query = sql.SQL(statement).format(sql.Identifier(broker.schema))  # type: ignore[attr-defined]
    with psycopg.connect(services.POSTGRES_URL, autocommit=True) as conn:
        assert conn.execute(query, params).rowcount == 1
