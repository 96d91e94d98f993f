"""GroupResult: the results of a group's members, in member order.

`save()` stores the member ids in the result store under the group's id (as an outcome of the
pseudo-task `conveyor.group`, expiring like any result); `GroupResult.restore(id)` reads them
back in any process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import TimeoutError
from ..message import decode_value, encode_value
from ..result import AsyncResult
from ..results.base import GROUP_RECORD, Outcome
from ..states import TaskState
from .nodes import GroupNode, result_ids

if TYPE_CHECKING:
    from ..app import Conveyor

GROUP_TASK = GROUP_RECORD


class GroupResult:
    """Handles on a group's member results (`results`), with Celery's methods."""

    #: canvas: the handle on the step before the group in a chain (Celery's `res.parent`).
    parent: AsyncResult | GroupResult | None = None

    def __init__(self, id: str, results: list[AsyncResult], app: Conveyor) -> None:
        self.id = id
        self.results = results
        self.app = app

    @classmethod
    def of(cls, app: Conveyor, node: GroupNode) -> GroupResult:
        return cls(node.id, [AsyncResult(i, app) for i in result_ids(node)], app)

    def __repr__(self) -> str:
        return f"<GroupResult {self.id}: {len(self.results)} results>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Any:
        return iter(self.results)

    def _outcomes(self) -> dict[str, Outcome]:
        return self.app.results.get_many([r.id for r in self.results])

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(o.state is TaskState.SUCCESS for o in self._outcomes().values())

    def ready(self) -> bool:
        """Whether every member finished (succeeded, failed or was revoked)."""
        found = self._outcomes()
        return all(r.id in found and found[r.id].state.ready for r in self.results)

    def successful(self) -> bool:
        found = self._outcomes()
        return all(r.id in found and found[r.id].state is TaskState.SUCCESS for r in self.results)

    def failed(self) -> bool:
        return any(o.state is TaskState.FAILURE for o in self._outcomes().values())

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """The members' results in order, once all are ready. With `propagate`, the first
        failed member's error (in member order) is raised."""
        ids = [r.id for r in self.results]
        found = self.app.results.wait(ids, timeout)
        if len(found) < len(set(ids)):
            raise TimeoutError(
                f"group {self.id}: {len(found)} of {len(set(ids))} results ready within {timeout} s"
            )
        return [r.get(timeout=0, propagate=propagate) for r in self.results]

    join = get

    def save(self) -> GroupResult:
        """Store the member ids under the group id, for `GroupResult.restore`."""
        value = encode_value([r.id for r in self.results])
        self.app.results.put(
            [Outcome(self.id, TaskState.SUCCESS, value=value, task_name=GROUP_TASK)]
        )
        return self

    @classmethod
    def restore(cls, id: str, app: Conveyor | None = None) -> GroupResult | None:
        """The saved group `id`, or None when it was never saved (or expired)."""
        if app is None:
            from ..app import current_app

            app = current_app()
        outcome = app.results.get(id)
        if outcome is None or outcome.task_name != GROUP_TASK or outcome.value is None:
            return None
        ids = decode_value(outcome.value, app.conf.settings.result_max_size)
        return cls(id, [AsyncResult(i, app) for i in ids], app)
