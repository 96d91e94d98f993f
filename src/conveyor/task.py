"""The Task wrapper: what `@app.task` returns.

Calling the task runs the function inline; `delay` / `apply_async` send a message for a worker.
A bound task (`bind=True`) receives the Task as `self`, with `self.request` and `self.retry()`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from .bounds import check_seconds
from .errors import MaxRetriesExceededError, Retry
from .message import NO_LINKS
from .options import CallOptions, TaskOptions, check_max_retries
from .request import DIRECT_CALL, Request, current_request
from .retry import retries_exhausted

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.maps import chunks
    from .canvas.signature import Canvas, Signature
    from .result import AsyncResult, EagerResult


class Task:
    """A registered function plus its options. Instances are shared by all calls and threads;
    per-call state lives in `request`, which is context-local."""

    def __init__(
        self, app: Conveyor, fn: Callable[..., Any], name: str, options: TaskOptions
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", name)
        self.__module__ = getattr(fn, "__module__", __name__)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    # -- running inline ---------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now, like a plain call (no message, no result stored)."""
        if self.options.bind:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    @property
    def request(self) -> Request:
        """The running call's context, or an empty one when called directly."""
        req = current_request()
        return req if req is not None and req.task == self.name else DIRECT_CALL

    # -- workflows --------------------------------------------------------------------------
    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature: this task with these arguments, for chain/group (`add.s(2)`); inside a
        chain the previous step's result is put before them."""
        from .canvas.signature import signature

        return signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: the previous step's result is not passed to it."""
        from .canvas.signature import signature

        return signature(self, args, kwargs, immutable=True)

    def signature(
        self, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> Signature:
        """Celery's long form of `s()`: options are queue, priority, countdown, immutable,
        headers."""
        from .canvas.signature import signature

        return signature(self, args, kwargs).set(**options)

    # -- canvas: map, starmap, chunks (Celery's xmap, xstarmap, chunks) ---------------------
    def map(self, it: Iterable[Any]) -> Signature:
        """One call running this task on every item in turn, returning the list of results:
        `~add_one.map([1, 2, 3])` (see canvas/maps.py)."""
        from .canvas.maps import xmap

        return xmap(self, it)

    def starmap(self, it: Iterable[Iterable[Any]]) -> Signature:
        """One call running `self(*item)` for every item in turn: `add.starmap([(2, 2)])`."""
        from .canvas.maps import xstarmap

        return xstarmap(self, it)

    def chunks(self, it: Iterable[Iterable[Any]], n: int) -> chunks:
        """The items split into parts of `n`, one call per part, sent as a group:
        `add.chunks(zip(range(100), range(100)), 10)()` (see canvas/maps.py)."""
        from .canvas.maps import chunks

        return chunks(self, it, n)

    # -- sending ----------------------------------------------------------------------------
    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Send a call with these arguments; returns its AsyncResult."""
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        expires: float | datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        task_id: str | None = None,
        headers: Mapping[str, Any] | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        link: Canvas | Sequence[Canvas] | None = None,
        link_error: Canvas | Sequence[Canvas] | None = None,
    ) -> AsyncResult:
        """Send a call. `countdown` (seconds) or `eta` delays it; `expires` (seconds from now
        or a datetime) drops it unstarted after that time; `priority` 0–9 (higher first),
        `queue` and the time limits override the task's options; `task_id` makes the send
        idempotent. `link` / `link_error`: signature(s) sent when the call succeeds / fails
        for good (see canvas/callbacks.py)."""
        call = CallOptions(
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            countdown=countdown,
            eta=eta,
            expires=expires,
            priority=priority,
            queue=queue,
            task_id=task_id,
            headers=dict(headers or {}),
        )
        links = NO_LINKS
        if link is not None or link_error is not None:  # canvas: Celery's link / link_error
            from .canvas.signature import links_of

            links = links_of(link, link_error)
        result = self.app.publish(
            self.name, tuple(args or ()), dict(kwargs or {}), call, self, links
        )
        if links.link:
            from .canvas.signature import children_of

            result.children = children_of(self.app, links.link)
        return result

    def AsyncResult(self, task_id: str) -> AsyncResult:
        return self.app.AsyncResult(task_id)

    # -- results: progress states and running here (results area) ---------------------------
    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Store `state` (any name, e.g. "PROGRESS") with `meta` (JSON) for the running call
        (or `task_id`), readable as `result.state` / `result.info` while it runs; fenced by
        the call's lease. See conveyor.progress for the rules."""
        from .progress import update_state

        update_state(self, task_id, state, meta)

    def apply(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        task_id: str | None = None,
        retries: int | None = None,
        throw: bool | None = None,
        headers: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> EagerResult:
        """Run the task here and now, as a worker would (signals, retries run again at once),
        and return an EagerResult holding its state and value; nothing is stored or sent.
        `throw` (default `task_eager_propagates`) re-raises a failure here. See
        conveyor.eager.apply_here for the options accepted."""
        from .eager import apply_here

        return apply_here(self, args, kwargs, task_id, retries, throw, headers, options)

    # -- retrying ---------------------------------------------------------------------------
    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
    ) -> NoReturn:
        """Ask for this call to run again after `countdown` seconds (default
        `default_retry_delay`). Always raises: `Retry` while retries remain; once `max_retries`
        is reached, `exc` itself (or MaxRetriesExceededError). Write `raise self.retry(...)`."""
        req = self.request
        limit = self.options.max_retries if max_retries is None else check_max_retries(max_retries)
        if req.called_directly or retries_exhausted(limit, req.retries):
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"{self.name}[{req.id}] reached max_retries={limit}"
                if not req.called_directly
                else f"{self.name}.retry() called outside a worker"
            )
        delay = self.options.default_retry_delay if countdown is None else countdown
        check_seconds("retry countdown", delay, zero=True)
        raise Retry(exc=exc, countdown=float(delay), retries=req.retries + 1)

    # -- Django: sending once the transaction commits (conveyor.contrib.django) -------------
    def delay_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """`delay(*args, **kwargs)` once the current Django transaction commits (at once in
        autocommit, never if it rolls back); returns None, as the call is not sent yet.
        Celery's DjangoTask method; needs Django."""
        from .contrib.django.task import on_commit

        on_commit(functools.partial(self.delay, *args, **kwargs))

    def apply_async_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """`apply_async(*args, **kwargs)` once the current Django transaction commits, as
        `delay_on_commit`. Unknown options are a TypeError now, not after the commit."""
        from .contrib.django.task import on_commit

        inspect.signature(self.apply_async).bind(*args, **kwargs)
        on_commit(functools.partial(self.apply_async, *args, **kwargs))
