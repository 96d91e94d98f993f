"""ResultSet and GroupResult: the results of several calls, read together, in order.

`GroupResult` is a group's ResultSet with the group's id. `save()` stores the member ids in
the result store under the group's id (as an outcome of the pseudo-task `conveyor.group`,
expiring like any result); `GroupResult.restore(id)` reads them back in any process.
"""

from __future__ import annotations

import contextlib
import time
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
        """The members' values in member order (`timeout` covers the whole wait).

        With `propagate`, members are taken in order as Celery's `join` does: the error of
        the first failed (or revoked) member is raised as soon as every member before it has
        succeeded, without waiting for the later ones. With `callback(task_id, value)`, each
        value goes to it and the list is empty, as in Celery. `on_interval()` is called once
        per `interval` seconds of waiting. Inside a task this raises RuntimeError unless
        `disable_sync_subtasks=False`. `no_ack` changes nothing (reading never consumes a
        result); `on_message` is for one result (`AsyncResult.get`) and is refused."""
        if on_message is not None:
            raise ValueError(
                "on_message is supported by AsyncResult.get only: wait on each member with "
                "result.get(on_message=...) instead"
            )
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        if disable_sync_subtasks:
            assert_will_not_block()
        polled = propagate or on_interval is not None
        found = self._ready(timeout, interval if polled else None, propagate, on_interval)
        values = []
        for result in self.results:
            value = result._final_value(found[result.id])
            if propagate and isinstance(value, BaseException):
                raise value
            if callback is not None:
                callback(result.id, value)
            else:
                values.append(value)
        return values

    def _ready(
        self,
        timeout: float | None,
        interval: float | None,
        propagate: bool,
        on_interval: Callable[[], Any] | None,
    ) -> dict[str, Outcome]:
        """The members' ready outcomes: all of them, or (`propagate`) those up to the first
        failure in member order. Waits in one store call, or in slices of `interval`."""
        ids = list(dict.fromkeys(r.id for r in self.results))
        deadline = None if timeout is None else time.monotonic() + timeout
        found: dict[str, Outcome] = {}
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            step = _slice(remaining, interval)
            found.update(self.app.results.wait([i for i in ids if i not in found], step))
            if len(found) == len(ids) or (propagate and self._failure_reached(found)):
                return found
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"{self!r}: {len(found)} of {len(ids)} results ready within {timeout} s"
                )
            if on_interval is not None:
                on_interval()

    def _failure_reached(self, found: dict[str, Outcome]) -> bool:
        """Whether, in member order, a failed or revoked member comes before any unfinished."""
        for result in self.results:
            outcome = found.get(result.id)
            if outcome is None:
                return False
            if outcome.state is not TaskState.SUCCESS:
                return True
        return False

    join = get
    join_native = get

    @property
    def supports_native_join(self) -> bool:
        return True


class GroupResult(ResultSet):
    """A group's results, with the group's `id` (for `save` / `restore`)."""

    #: canvas: the step before the group in a workflow (an AsyncResult, or a chord's header).
    parent: AsyncResult | GroupResult | None

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


def _slice(remaining: float | None, interval: float | None) -> float | None:
    """How long one store wait may block: the time left, cut to `interval` when polling."""
    if interval is None:
        return remaining
    return interval if remaining is None else min(interval, remaining)
