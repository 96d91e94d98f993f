"""What the SQL brokers share: the state codes of their message tables, the row layout of
their admin queries (`list_messages`, `get_message`), and how a granted row becomes a Delivery,
so SQLite and PostgreSQL read one way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import DEFAULT_MAX_DELIVERIES, Delivery, Envelope, Lease, MessageState, StoredMessage

#: `conveyor_messages.state`; 4 (done, a tombstone) is never shown.
STATE_CODES = {
    MessageState.READY: 0,
    MessageState.SCHEDULED: 1,
    MessageState.LEASED: 2,
    MessageState.DEAD: 3,
}
STATES_BY_CODE = {code: state for state, code in STATE_CODES.items()}
_SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL"}


def stored_message(r: Sequence[Any]) -> StoredMessage:
    """A row of (id, queue, priority, state, available_at, body, max_deliveries, deliveries,
    reason, last_error, updated_at, …)."""
    body = r[5].encode() if isinstance(r[5], str) else r[5]  # SQLite stores what it is given
    body = body if isinstance(body, bytes) else b""
    envelope = Envelope(id=r[0], queue=r[1], body=body, priority=r[2], max_deliveries=r[6])
    return StoredMessage(envelope, STATES_BY_CODE[r[3]], r[7], r[4], r[8], r[9], r[10])


def granted(r: Sequence[Any], token: int, expires: float) -> Delivery:
    """A granted row of (id, queue, priority, body, max_deliveries, deliveries, begun, revoked,
    terminate). A column that does not hold what conveyor writes (a NULL or text body, a
    priority that is not an integer: something else wrote the row) gives a delivery with a
    `defect` rather than an error for the whole batch (see the broker contract)."""
    mid, queue, priority, body, max_deliveries, deliveries, begun, revoked, terminate = r[:9]
    problems: list[str] = []
    if not isinstance(body, bytes):
        kind = _SQL_TYPES.get(type(body), type(body).__name__)
        problems.append("body is NULL" if body is None else f"body is {kind}, not a BLOB")
        body = b""
    if type(priority) is not int:
        problems.append(f"priority is {priority!r}, not an integer")
        priority = 0
    if type(max_deliveries) is not int:
        problems.append(f"max_deliveries is {max_deliveries!r}, not an integer")
        max_deliveries = DEFAULT_MAX_DELIVERIES
    attempt = deliveries if type(deliveries) is int else 1
    defect = f"unreadable message row: {'; '.join(problems)}" if problems else None
    return Delivery(
        Envelope(str(mid), str(queue), bytes(body), priority, 0.0, max_deliveries),
        Lease(str(mid), token, expires, bool(revoked), bool(terminate)),
        attempt,
        bool(begun),
        defect,
    )
