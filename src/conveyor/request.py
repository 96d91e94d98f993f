"""The context of the call a task is running (`self.request` in a bound task)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .message import Message


@dataclass(frozen=True, slots=True)
class Request:
    """One running call. `attempt` counts deliveries (1 = first; more after a worker died),
    `retries` counts retries the task asked for."""

    id: str | None = None
    task: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: float | None = None
    expires: float | None = None
    hostname: str | None = None
    delivery_info: Mapping[str, Any] = field(default_factory=dict)
    attempt: int = 1
    parent_id: str | None = None
    root_id: str | None = None
    is_eager: bool = False
    called_directly: bool = False
    # The call's own headers (see Message.headers); conveyor's fields above never come from them.
    headers: Mapping[str, Any] = field(default_factory=dict)
    # apply_async's per-call options, as Celery's request carries them (see Message).
    ignore_result: bool | None = None
    shadow: str | None = None
    # The fencing token of the lease this run holds (0: no lease, eager or direct): what the
    # task's own result-store writes (`update_state`) are fenced with.
    lease_token: int = 0


def request_for(
    message: Message,
    hostname: str,
    attempt: int,
    delivery_info: Mapping[str, Any] | None = None,
    is_eager: bool = False,
    lease_token: int = 0,
) -> Request:
    """The request context for running `message` as delivery number `attempt`."""
    return Request(
        id=message.id,
        task=message.task,
        args=message.args,
        kwargs=message.kwargs,
        retries=message.retries,
        eta=message.eta,
        expires=message.expires,
        hostname=hostname,
        delivery_info=dict(delivery_info or {}),
        attempt=attempt,
        parent_id=message.parent_id,
        root_id=message.root_id,
        is_eager=is_eager,
        headers=dict(message.headers) if message.headers else {},  # the task may change its copy
        ignore_result=message.ignore_result,
        shadow=message.shadow,
        lease_token=lease_token,
    )


_current: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "conveyor_request", default=None
)
DIRECT_CALL = Request(called_directly=True)


def current_request() -> Request | None:
    """The request of the call running in this thread, if any."""
    return _current.get()


@contextmanager
def running(request: Request) -> Iterator[Request]:
    """Make `request` the current one for the duration of a call."""
    token = _current.set(request)
    try:
        yield request
    finally:
        _current.reset(token)
