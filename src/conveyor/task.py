"""The Task wrapper: what `@app.task` returns.

Calling the task runs the function inline; `delay` / `apply_async` send a message for a worker.
A bound task (`bind=True`) receives the Task as `self`, with `self.request` and `self.retry()`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from .bounds import check_seconds
from .errors import MaxRetriesExceededError, Retry
from .options import CallOptions, TaskOptions, check_max_retries
from .performing import bind_run, enter_call, leave_call
from .request import DIRECT_CALL, Request, current_request
from .retry import retries_exhausted

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.signature import Signature
    from .result import AsyncResult, EagerResult


class Task:
    """A registered function plus its options. Instances are shared by all calls and threads;
    per-call state lives in `request`, which is context-local."""

    def __init__(
        self,
        app: Conveyor | None = None,
        fn: Callable[..., Any] | None = None,
        name: str | None = None,
        options: TaskOptions | None = None,
    ) -> None:
        if app is None or fn is None or name is None or options is None:
            return  # `Task()`: a class-based task, bound by app.register_task with all four
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", name)
        self.__module__ = getattr(fn, "__module__", __name__)
        bind_run(self, fn, options.bind)

    # -- class-based tasks and the task's app (app area) ------------------------------------
    # Celery's class-based form: subclass, define `run()`, register an instance with
    # `app.register_task(MyTask())`. `__call__` runs `self.run`; a subclass may override
    # `__call__` (Flask's app-context pattern) and the worker calls that override.
    #: The app of the classes `app.Task` makes; every task gets its own when bound.
    _app: Conveyor | None = None
    name: str

    @property
    def app(self) -> Conveyor:
        """The task's app; for a class not bound yet (`class T(app.Task)`, `Task()`), the app
        of its class, else the current app — as in Celery."""
        if self._app is not None:
            return self._app
        from .app import current_app

        return current_app()

    @app.setter
    def app(self, app: Conveyor) -> None:
        self._app = app

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The task's body: a class-based task defines it; a function task's is the function."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no run() method: a class-based task must define "
            "run(self, ...), the body the worker calls"
        )

    def __repr__(self) -> str:
        return f"<Task {getattr(self, 'name', type(self).__qualname__)}>"

    # -- running inline ---------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now (`self.run`), like a plain call (no message, no result
        stored). The worker runs calls through this method too, so an override applies there.
        While it runs, this task is `conveyor.current_task` here."""
        token = enter_call(self)
        try:
            return self.run(*args, **kwargs)
        finally:
            leave_call(token)

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
    ) -> AsyncResult:
        """Send a call. `countdown` (seconds) or `eta` delays it; `expires` (seconds from now
        or a datetime) drops it unstarted after that time; `priority` 0–9 (higher first),
        `queue` and the time limits override the task's options; `task_id` makes the send
        idempotent."""
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
        return self.app.publish(self.name, tuple(args or ()), dict(kwargs or {}), call, self)

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
