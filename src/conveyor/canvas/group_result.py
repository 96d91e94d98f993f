"""ResultSet and GroupResult: the results of several calls, read together, in order.

`GroupResult` is a group's ResultSet with the group's id. `save()` stores the member ids in
the result store under the group's id (as an outcome of the pseudo-task `conveyor.group`,
expiring like any result); `GroupResult.restore(id)` reads them back in any process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import TimeoutError
from ..message import decode_value, encode_value
from ..result import AsyncResult, _default_app, assert_will_not_block
from ..results.base import GROUP_RECORD, Outcome
from ..states import TaskState
from .nodes import GroupNode, result_ids

if TYPE_CHECKING:
    from ..app import Conveyor

GROUP_TASK = GROUP_RECORD


class ResultSet:  # noqa: PLW1641  (mutable, so unhashable, as Celery's)
    """Several AsyncResults (`results`, in order) with Celery's methods for all of them.
    `app` defaults to the current app."""

    def __init__(self, results: Iterable[AsyncResult], app: Conveyor | None = None) -> None:
        self.results = list(results)
        self._app = app

    @property
    def app(self) -> Conveyor:
        if self._app is None:
            self._app = self.results[0].app if self.results else _default_app()
        return self._app

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: [{', '.join(r.id for r in self.results)}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResultSet) and other.results == self.results

    # -- membership -------------------------------------------------------------------------
    def add(self, result: AsyncResult) -> None:
        """Add `result` unless it is in the set already."""
        if result not in self.results:
            self.results.append(result)

    def update(self, results: Iterable[AsyncResult]) -> None:
        for result in results:
            self.add(result)

    def remove(self, result: AsyncResult | str) -> None:
        """Remove `result` (or the result with that id); KeyError when it is not a member."""
        found = AsyncResult(result, self.app) if isinstance(result, str) else result
        try:
            self.results.remove(found)
        except ValueError:
            raise KeyError(found.id) from None

    def discard(self, result: AsyncResult | str) -> None:
        """Remove `result` if it is a member."""
        with contextlib.suppress(KeyError):
            self.remove(result)

    def clear(self) -> None:
        self.results.clear()

    # -- state ------------------------------------------------------------------------------
    def _outcomes(self) -> dict[str, Outcome]:
        return self.app.results.get_many([r.id for r in self.results])

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(o.state is TaskState.SUCCESS for o in self._outcomes().values())

    def ready(self) -> bool:
        """Whether every member finished (succeeded, failed or was revoked)."""
        found = self._outcomes()
        return all(r.id in found and found[r.id].state.ready for r in self.results)

    def waiting(self) -> bool:
        """Whether some member has not finished yet."""
        return not self.ready()

    def successful(self) -> bool:
        found = self._outcomes()
        return all(r.id in found and found[r.id].state is TaskState.SUCCESS for r in self.results)

    def failed(self) -> bool:
        return any(o.state is TaskState.FAILURE for o in self._outcomes().values())

    def maybe_throw(
        self, callback: Callable[[str, Any], Any] | None = None, propagate: bool = True
    ) -> None:
        """Raise the first finished member's exception (in member order), if any."""
        for result in self.results:
            result.maybe_throw(callback=callback, propagate=propagate)

    maybe_reraise = maybe_throw

    def forget(self) -> None:
        self.app.results.forget([r.id for r in self.results])

    def revoke(self, terminate: bool = False) -> None:
        for result in self.results:
            result.revoke(terminate=terminate)

    # -- waiting ----------------------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float = 0.5,
        callback: Callable[[str, Any], Any] | None = None,
        no_ack: bool = True,
        on_message: Callable[[dict[str, Any]], Any] | None = None,
        disable_sync_subtasks: bool = True,
        on_interval: Callable[[], Any] | None = None,
    ) -> list[Any]:
        """The members' results in order, once all are ready (`timeout` covers the whole
        wait). With `propagate`, the first failed member's error (in member order) is raised.
        With `callback(task_id, value)`, each value goes to it and the list is empty, as in
        Celery. Inside a task this raises RuntimeError unless `disable_sync_subtasks=False`.
        `interval` and `no_ack` change nothing here (the store wakes the wait); `on_message`
        and `on_interval` are for one result (`AsyncResult.get`) and are refused."""
        if on_message is not None or on_interval is not None:
            raise ValueError(
                "on_message and on_interval are supported by AsyncResult.get only: wait on "
                "each member with result.get(on_message=...) instead"
            )
        if disable_sync_subtasks:
            assert_will_not_block()
        ids = [r.id for r in self.results]
        found = self.app.results.wait(ids, timeout)
        if len(found) < len(set(ids)):
            raise TimeoutError(
                f"{self!r}: {len(found)} of {len(set(ids))} results ready within {timeout} s"
            )
        values = []
        for result in self.results:
            value = result.get(timeout=0, propagate=propagate, disable_sync_subtasks=False)
            if callback is not None:
                callback(result.id, value)
            else:
                values.append(value)
        return values

    join = get
    join_native = get

    @property
    def supports_native_join(self) -> bool:
        return True


class GroupResult(ResultSet):
    """A group's results, with the group's `id` (for `save` / `restore`)."""

    def __init__(
        self,
        id: str | None = None,
        results: Iterable[AsyncResult] | None = None,
        parent: AsyncResult | None = None,
        app: Conveyor | None = None,
    ) -> None:
        super().__init__(results or (), app)
        if not id:
            raise ValueError("GroupResult needs the group's id")
        if parent is not None and not isinstance(parent, AsyncResult):
            raise TypeError(  # Celery's third argument is the parent: an app here is a slip
                f"GroupResult's third argument is its parent result, not {parent!r}: pass "
                "the app as app="
            )
        self.id = id
        self.parent = parent

    @classmethod
    def of(cls, app: Conveyor, node: GroupNode) -> GroupResult:
        return cls(node.id, [AsyncResult(i, app) for i in result_ids(node)], app=app)

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return other.id == self.id and other.results == self.results
        return False

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def children(self) -> list[AsyncResult]:
        return self.results

    def save(self) -> GroupResult:
        """Store the member ids under the group id, for `GroupResult.restore`."""
        value = encode_value([r.id for r in self.results])
        self.app.results.put(
            [Outcome(self.id, TaskState.SUCCESS, value=value, task_name=GROUP_TASK)]
        )
        return self

    def delete(self) -> None:
        """Delete what `save` stored (the members' results stay)."""
        self.app.results.forget([self.id])

    @classmethod
    def restore(cls, id: str, app: Conveyor | None = None) -> GroupResult | None:
        """The saved group `id`, or None when it was never saved (or expired)."""
        if app is None:
            app = _default_app()
        outcome = app.results.get(id)
        if outcome is None or outcome.task_name != GROUP_TASK or outcome.value is None:
            return None
        ids = decode_value(outcome.value, app.conf.settings.result_max_size)
        return cls(id, [AsyncResult(i, app) for i in ids], app=app)
