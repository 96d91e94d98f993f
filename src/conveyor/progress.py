"""`task.update_state(state=…, meta=…)`: a running call writes its own state to the result
store, so callers can watch it (`result.state` / `result.info`, `get(on_message=…)`).

Contract:
* Any state name is accepted ("PROGRESS", "UPLOADING", …): stored with `meta` as the value,
  it counts as running (not ready) everywhere, and readers see the name itself. Of Celery's
  own names, STARTED, RECEIVED, RETRY and SUCCESS store `meta` as the value; FAILURE needs
  an exception, or Celery's dict form `{"exc_type": …, "exc_message": …}`; PENDING and
  REVOKED are refused (use `forget()` or `revoke()`).
* Fenced like every other write of the call: the outcome carries the running call's lease
  token, the broker is asked first whether that lease is still held, and the store refuses
  it when a newer owner wrote since. A write that is dropped for either reason is logged as
  a warning (the call is being run by someone else now); it never raises into the task.
* `meta` must be JSON (EncodeError otherwise), as every stored value.
* The call's final outcome (SUCCESS, FAILURE, RETRY) replaces what was written here. A task
  that ends with `raise Ignore()` leaves the last state it wrote in place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .brokers.base import Lease
from .message import encode_value
from .request import Request
from .results.base import ErrorInfo, Outcome, state_from_name
from .states import TaskState

if TYPE_CHECKING:
    from .task import Task

log = logging.getLogger("conveyor.task")

_REFUSED = {
    TaskState.PENDING: "PENDING is never stored (it is what a reader sees when nothing is); "
    "call result.forget() to go back to it",
    TaskState.REVOKED: "a call is revoked with result.revoke() or app.control.revoke(), which "
    "the broker enforces",
}


def update_state(task: Task, task_id: str | None, state: str | None, meta: Any) -> None:
    """Write `state` with `meta` for `task_id` (default: the running call); see the module
    docstring."""
    req = task.request
    own = not req.called_directly and req.id is not None and task_id in (None, req.id)
    target = req.id if own else task_id
    if target is None:
        raise ValueError(
            "update_state() outside a running call needs task_id=: there is no current call "
            "to update"
        )
    if not isinstance(state, str) or not state:
        raise ValueError(f"update_state() needs a state name (a non-empty string), not {state!r}")
    outcome = _outcome(task, req if own else None, target, state, meta)
    if outcome.token and not task.app.broker.confirm([Lease(target, outcome.token, 0.0)])[0]:
        log.warning(
            "update_state(%r) for %s not stored: this run's lease (token %d) is no longer "
            "held, so the call will be run again elsewhere",
            state,
            target,
            outcome.token,
        )
        return
    if not task.app.results.put([outcome])[0]:
        log.warning(
            "update_state(%r) for %s not stored: a newer run of the call owns its result",
            state,
            target,
        )


def _outcome(task: Task, req: Request | None, task_id: str, name: str, meta: Any) -> Outcome:
    state, custom = state_from_name(name)
    if state in _REFUSED:
        raise ValueError(f"update_state(state={name!r}) is refused: {_REFUSED[state]}")
    value = error = None
    if state is TaskState.FAILURE:
        error = _failure(meta)
    else:
        value = encode_value(meta, "update_state meta")
    if req is None:  # another call's id: what the caller knows of it
        return Outcome(task_id, state, value=value, error=error, custom_state=custom)
    return Outcome(
        task_id,
        state,
        value=value,
        error=error,
        custom_state=custom,
        task_name=req.task,
        queue=req.delivery_info.get("queue"),
        worker=req.hostname,
        attempt=req.attempt,
        retries=req.retries,
        token=req.lease_token,
    )


def _failure(meta: Any) -> ErrorInfo:
    """FAILURE's meta as a stored error: an exception, or Celery's dict form."""
    if isinstance(meta, BaseException):
        from .worker.executor import error_info

        return error_info(meta)
    if isinstance(meta, Mapping) and isinstance(meta.get("exc_type"), str):
        message = meta.get("exc_message", "")
        if isinstance(message, list | tuple):
            message = message[0] if len(message) == 1 else "\n".join(map(str, message))
        module = meta.get("exc_module")
        return ErrorInfo(
            type=meta["exc_type"],
            message=str(message),
            module=module if isinstance(module, str) and module else "builtins",
        )
    raise ValueError(
        "update_state(state='FAILURE') needs meta to be an exception, or a dict with "
        "'exc_type' (and 'exc_message'), so readers can rebuild it; got "
        f"{type(meta).__name__}"
    )
