"""`app.control`: acting on calls already sent. Today: revoke.

Revocation is stored in the broker, not broadcast to the workers that happen to be running
(Celery keeps revoked ids in each worker's memory, so a worker started later, or restarted,
runs them). Here:

* a call still waiting (ready, delayed, retrying or dead) is deleted and recorded REVOKED at
  once, and its id is remembered like an acknowledged one, so sending it again is a no-op;
* a call a worker holds is flagged: if it has not started, the worker records REVOKED instead
  of starting it; with `terminate=True` a running call is killed and recorded REVOKED
  ("terminated"). The holder learns at its next lease renewal (a third of the visibility
  timeout); if it died meanwhile, the next worker to receive the call records REVOKED;
* an id not stored (not sent yet, or finished) is remembered for `task_idempotency_window`,
  and recorded REVOKED unless it already has a final outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .brokers.base import Revocation, RevokeOutcome
from .results.base import Outcome
from .states import TaskState

if TYPE_CHECKING:
    from .app import Conveyor


class Control:
    def __init__(self, app: Conveyor) -> None:
        self._app = app

    def revoke(self, task_id: str | Sequence[str], terminate: bool = False) -> list[Revocation]:
        """Revoke one call or several; see the module docstring for what happens to each."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        revocations = self._app.broker.revoke(ids, terminate=terminate)
        known = self._app.results.get_many(ids)
        outcomes = [
            Outcome(r.message_id, TaskState.REVOKED, reason="revoked", token=r.token)
            for r in revocations
            if r.outcome is not RevokeOutcome.FLAGGED
            and not (r.message_id in known and known[r.message_id].state.ready)
        ]
        self._app.results.put(outcomes)
        return revocations
