"""What the SQL brokers share: the state codes of their message tables and the row layout of
their admin queries (`list_messages`, `get_message`), so SQLite and PostgreSQL read one way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Envelope, MessageState, StoredMessage

#: `conveyor_messages.state`; 4 (done, a tombstone) is never shown.
STATE_CODES = {
    MessageState.READY: 0,
    MessageState.SCHEDULED: 1,
    MessageState.LEASED: 2,
    MessageState.DEAD: 3,
}
STATES_BY_CODE = {code: state for state, code in STATE_CODES.items()}


def stored_message(r: Sequence[Any]) -> StoredMessage:
    """A row of (id, queue, priority, state, available_at, body, max_deliveries, deliveries,
    reason, last_error, updated_at, …)."""
    envelope = Envelope(id=r[0], queue=r[1], body=r[5] or b"", priority=r[2], max_deliveries=r[6])
    return StoredMessage(envelope, STATES_BY_CODE[r[3]], r[7], r[4], r[8], r[9], r[10])
