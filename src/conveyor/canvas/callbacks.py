"""Celery's `link` and `link_error`: what a call sends when it ends.

Contract. A call's callbacks (`link`) are sent when it succeeds, each given its result as the
first argument (unless immutable); its errbacks (`link_error`) are sent when it fails for good
(retries used up, rejected, or refused by the worker), never while it is retried. Their ids are
fixed when the call is sent, so a call delivered again after a crash re-sends them under the
same ids, which the broker stores once: each runs exactly once (within the broker's idempotency
window, `task_idempotency_window`). They are sent by the worker that settles the call, after its
outcome is stored and before its message is acknowledged (see canvas/flow.py).

Errback arguments, as Celery gives them. An errback whose task takes more than one positional
argument (and is not `bind=True`) is called as `errback(request, exc, traceback, *its_args)`:
the failed call's request (id, task, args, kwargs, retries), its exception (rebuilt as results
rebuild it) and its traceback text. Celery calls it inline in the worker that ran the task;
conveyor sends it as a call of the builtin `conveyor.errback` (to the errback task's queue) that
calls it there, so that it runs once. Any other errback (`def on_error(task_id)`, a bound task,
a task this worker does not have) is sent as a call given the failed call's id first, as Celery
does for them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import OUTAGES, ConfigurationError, EncodeError, MessageTooLarge, NotRegistered
from ..message import Links, Message
from ..options import CallOptions
from ..results.base import ErrorInfo, storable_text
from .nodes import Node, SigNode, all_calls, first_calls

if TYPE_CHECKING:
    from ..app import Conveyor
    from ..task import Task

log = logging.getLogger("conveyor.workflow")

ERRBACK_TASK = "conveyor.errback"

#: What sending a callback can meet that sending it again would meet too.
_PERMANENT = (NotRegistered, EncodeError, MessageTooLarge, ConfigurationError)


def send_callbacks(app: Conveyor, links: Links, task_id: str, value: Any) -> None:
    """Call `task_id` succeeded with `value`: send its callbacks, each given `value` first."""
    from .flow import Parent, send_node

    for node in links.link:
        _guarded(
            app, node, task_id, "callback", functools.partial(send_node, app, node, Parent(value))
        )


def send_errbacks(
    app: Conveyor,
    links: Links,
    task_name: str,
    task_id: str,
    error: ErrorInfo,
    request: dict[str, Any] | None = None,
) -> None:
    """Call `task_id` failed for good with `error`: send its errbacks (see the module
    docstring for the arguments each is given; `request` replaces what they are told of the
    failed call)."""
    if request is None:
        request = _request_of(links.origin, task_name, task_id)
    for node in links.link_error:
        send = functools.partial(_send_errback, app, node, request, error)
        _guarded(app, node, task_id, "errback", send)


def _send_errback(app: Conveyor, node: Node, request: dict[str, Any], error: ErrorInfo) -> None:
    from .flow import Parent, send_node

    if isinstance(node, SigNode) and takes_request(app.tasks.get(node.task)):
        send_node(app, errback_call(app, node, request, error))
    else:
        send_node(app, node, Parent(request["id"]))


def send_body_errbacks(app: Conveyor, then: tuple[Node, ...], error: ErrorInfo) -> None:
    """A chord failed (a header member failed, or its results could not be collected): send
    the errbacks of its body's first call(s), as Celery does, telling them of the body's call
    (its id, task and arguments) with the header's error."""
    if not then:
        return
    for call in first_calls(then[0]):
        if call.link_error:
            request = {
                "id": call.id,
                "task": call.task,
                "args": list(call.args),
                "kwargs": dict(call.kwargs),
            }
            links = Links(link_error=call.link_error)
            send_errbacks(app, links, call.task, call.id, error, request)


def takes_request(task: Task | None) -> bool:
    """Whether Celery would call this errback as `errback(request, exc, traceback)`: its
    function takes more than one positional argument and it is not bound."""
    if task is None or task.options.bind:
        return False
    try:
        params = inspect.signature(task.fn).parameters.values()
    except (TypeError, ValueError):  # a callable without an introspectable signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > 1 or any(p.kind is p.VAR_POSITIONAL for p in params)


def errback_call(
    app: Conveyor, node: SigNode, request: dict[str, Any], error: ErrorInfo
) -> SigNode:
    """The call of the builtin `conveyor.errback` that calls `node`'s task with the failed
    call's request, exception and traceback: same id (so it is sent once), same links, and
    the errback task's queue."""
    task = app.tasks.get(node.task)
    queue = app.route(node.task, task, CallOptions(queue=node.queue)).queue
    return SigNode(
        task=ERRBACK_TASK,
        id=node.id,
        kwargs={
            "errback": {
                "task": node.task,
                "args": list(node.args),
                "kwargs": dict(node.kwargs),
                "immutable": node.immutable,
            },
            "request": request,
            "error": {
                "type": error.type,
                "message": error.message,
                "module": error.module,
                "traceback": error.traceback,
            },
        },
        immutable=True,
        queue=queue,
        priority=node.priority,
        countdown=node.countdown,
        headers=node.headers,
        link=node.link,
        link_error=node.link_error,
    )


def _request_of(origin: Message | None, task_name: str, task_id: str) -> dict[str, Any]:
    """What an errback's `request` holds about the failed call (its arguments only when its
    message is at hand: a body the worker refused is not read that far)."""
    request: dict[str, Any] = {"id": task_id, "task": task_name}
    if origin is not None:
        request.update(
            args=list(origin.args),
            kwargs=dict(origin.kwargs),
            retries=origin.retries,
            parent_id=origin.parent_id,
            root_id=origin.root_id,
        )
    return request


def _guarded(app: Conveyor, node: Node, task_id: str, kind: str, send: Callable[[], None]) -> None:
    """Send one callback (`node`, by calling `send`). An outage raises (the call is delivered
    again and re-sends it under the same id); any other refusal would meet the call again, so
    the callback's calls are marked FAILURE saying why, and the rest goes on."""
    try:
        send()
    except OUTAGES:
        raise
    except Exception as exc:
        if app.conf.settings.task_always_eager and not isinstance(exc, _PERMANENT):
            raise  # the callback ran inline and failed: the caller gets its error
        why = f"the {kind} of {task_id} cannot be sent: {type(exc).__name__}: {exc}"
        log.error("%s; it is marked FAILURE", storable_text(why))
        _fail_calls(app, node, why)


def _fail_calls(app: Conveyor, node: Node, why: str) -> None:
    from ..results.base import Outcome
    from ..states import TaskState

    error = ErrorInfo("WorkflowError", why, module="conveyor.errors")
    now = app.clock.now()
    app.results.put(
        [
            Outcome(call.id, TaskState.FAILURE, error=error, task_name=call.task, finished_at=now)
            for call in all_calls((node,))
        ]
    )
