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

from .arguments import parameters_of
from .bounds import check_seconds
from .calling import check_other_options, mapped
from .errors import ConfigurationError, MaxRetriesExceededError, Retry
from .guard import budget_for
from .message import NO_LINKS
from .options import CallOptions, TaskOptions, check_max_retries
from .performing import bind_run, enter_call, leave_call
from .request import DIRECT_CALL, Request, current_request
from .retry import retries_exhausted
from .task_attributes import OptionAttributes, with_views

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.maps import chunks
    from .canvas.signature import Canvas, Signature
    from .result import AsyncResult, EagerResult
    from .signals import ExceptionInfo


_UNREAD = object()


class Task(OptionAttributes):
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
        cls = with_views(type(self))
        if cls is not type(self):  # a base class's `max_retries = 5` would hide the options
            self.__class__ = cls
        self.app = app
        self.fn = fn
        self.name = name
        self.declared_options = options
        self._annotated: tuple[object, TaskOptions, Mapping[str, Callable[..., Any]]] | None = None
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

    # -- options, with the task_annotations setting applied ---------------------------------
    @property
    def options(self) -> TaskOptions:
        """The options in effect: the decorator's, with `task_annotations` applied over them
        (worked out again when the settings change; see conveyor.annotations)."""
        return self._current_annotations()[1]

    def hook(self, name: str) -> Callable[..., Any]:
        """The hook method `name` in effect: one given by `task_annotations`, else this
        class's."""
        given = self._current_annotations()[2].get(name)
        return given if given is not None else getattr(self, name)

    def _current_annotations(
        self,
    ) -> tuple[object, TaskOptions, Mapping[str, Callable[..., Any]]]:
        annotations = self.app.conf.settings.task_annotations
        cached = self._annotated
        if cached is None or cached[0] is not annotations:
            from .annotations import annotated

            options, hooks = annotated(self, self.declared_options, annotations)
            cached = self._annotated = (annotations, options, hooks)
        return cached

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
        ignore_result: bool | None = None,
        serializer: str | None = None,
        compression: str | None = None,
        retry: bool | None = None,
        retry_policy: Mapping[str, Any] | None = None,
        exchange: Any = None,
        routing_key: str | None = None,
        shadow: str | None = None,
        link: Canvas | Sequence[Canvas] | None = None,
        link_error: Canvas | Sequence[Canvas] | None = None,
        **other: Any,
    ) -> AsyncResult:
        """Send a call. `countdown` (seconds) or `eta` delays it; `expires` (seconds from now
        or a datetime) drops it unstarted after that time; `priority` 0–9 (higher first),
        `queue` and the time limits override the task's options; `task_id` makes the send
        idempotent. The arguments are checked against the function's parameters first
        (TypeError, as Celery; `typing=False` on the task turns that off).

        Celery's options: `ignore_result` for this call only; `shadow` is the name the call
        shows under in logs, events and results; `compression` ("gzip" or "zstd") compresses
        the message body; `retry=False` / `retry_policy={...}` set how long to keep trying a
        broker that does not answer; `routing_key` / `exchange` name a queue as in Celery's
        default topology (see conveyor.calling); `serializer` may only be "json". Celery's
        publishing options that mean nothing here are refused saying why, except the harmless
        `delivery_mode="persistent"` and `argsrepr`/`kwargsrepr` (see
        conveyor.calling.check_other_options). `link` / `link_error`: signature(s) sent when
        the call succeeds / fails for good (see canvas/callbacks.py)."""
        call_args, call_kwargs = tuple(args or ()), dict(kwargs or {})
        settings = self.app.conf.settings
        hard, soft = self.options.time_limit, self.options.soft_time_limit
        if hard and soft and soft > hard:  # Celery's check, on the task's own limits
            raise ValueError(
                f"{self.name}: soft_time_limit ({soft:g}s) must be less than or equal to "
                f"time_limit ({hard:g}s): the hard limit would stop the call first"
            )
        self.check_arguments(call_args, call_kwargs)
        celery = {"queue": queue, **other}
        shadow = shadow or self.shadow_name(call_args, call_kwargs, celery)
        call = CallOptions(
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            countdown=countdown,
            eta=eta,
            expires=expires,
            priority=priority,
            task_id=task_id,
            headers=dict(headers or {}),
            **mapped(
                settings,
                queue,
                {
                    **other,
                    "ignore_result": ignore_result,
                    "serializer": serializer,
                    "compression": compression,
                    "retry": retry,
                    "retry_policy": retry_policy,
                    "exchange": exchange,
                    "routing_key": routing_key,
                    "shadow": shadow,
                },
            ),
        )
        links = NO_LINKS
        if link is not None or link_error is not None:  # canvas: Celery's link / link_error
            from .canvas.signature import links_of

            links = links_of(link, link_error)
        with budget_for(call.retry_budget):
            result = self.app.publish(self.name, call_args, call_kwargs, call, self, links)
        if links.link:
            from .canvas.signature import children_of

            result.children = children_of(self.app, links.link)
        return result

    def shadow_name(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], options: Mapping[str, Any]
    ) -> str | None:
        """Celery's hook for a call's name in logs, events and results when `apply_async` is
        given no `shadow=`: override it in a Task subclass (`options` holds `queue` and the
        other publishing options given). None, the default, keeps the task's name."""
        return None

    # -- the call-time argument check (Celery's typing) -------------------------------------
    def check_arguments(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise TypeError when the function cannot be called with `args` and `kwargs` (a
        bound task's `self` aside), unless the task has `typing=False` or the app
        `strict_typing=False`. A function whose parameters cannot be read is not checked
        (see conveyor.arguments)."""
        if self.options.typing is False or not getattr(self.app, "strict_typing", True):
            return
        params = self.__dict__.get("_parameters", _UNREAD)
        if params is _UNREAD:  # read once: the function and `bind` never change
            params = self.__dict__["_parameters"] = parameters_of(self.fn, self.options.bind)
        if params is not None:
            params.check(self.name, args, kwargs)

    def AsyncResult(self, task_id: str) -> AsyncResult:
        return self.app.AsyncResult(task_id)

    # -- hooks (Celery's Task handlers; see conveyor.worker.hooks) --------------------------
    # Override them in a Task subclass given as `base=` (or the app's task class). They run in
    # the process that ran the call (a pool child, or the caller in eager mode), with
    # `self.request` still describing the call. The defaults do nothing.
    def before_start(self, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Called just before the function runs; raising here fails the call."""

    def on_success(
        self, retval: Any, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        """Called after the function returned `retval` (before the outcome is stored);
        raising here records the call as FAILURE instead."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """Called when the call failed with `exc` (`einfo.traceback` is its traceback)."""

    def on_retry(
        self,
        exc: BaseException | None,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """Called when the call is to run again: `exc` is the error the retry was for (None
        when `self.retry()` was given none)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        """Called last, after a SUCCESS, FAILURE or RETRY (not a Reject or an Ignore):
        `status` is the state's name, `retval` the return value or the exception; `einfo` is
        None, as Celery passes it."""

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
        *,
        eta: datetime | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        throw: bool = True,
        **options: Any,
    ) -> NoReturn:
        """Ask for this call to run again after `countdown` seconds (default
        `default_retry_delay`) or at `eta`. Always raises: `Retry` while retries remain; once
        `max_retries` is reached, `exc` itself (or MaxRetriesExceededError). Write `raise
        self.retry(...)`. Celery's `args` / `kwargs` may only repeat the call's own (a retry
        runs the same message again); `throw=False` and other options (queue, priority…) are
        refused saying why."""
        req = self.request
        _check_retry_extras(req, args, kwargs, throw, options)
        limit = self.options.max_retries if max_retries is None else check_max_retries(max_retries)
        if req.called_directly or retries_exhausted(limit, req.retries):
            if exc is not None:
                raise exc
            raise MaxRetriesExceededError(
                f"{self.name}[{req.id}] reached max_retries={limit}"
                if not req.called_directly
                else f"{self.name}.retry() called outside a worker"
            )
        if eta is not None:
            if countdown is not None:
                raise ConfigurationError("retry: give countdown= or eta=, not both")
            countdown = max(0.0, self.app.to_epoch(eta) - self.app.clock.now())
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

        bound = inspect.signature(self.apply_async).bind(*args, **kwargs)
        # apply_async takes Celery's other options as **other: check those now too (task area)
        check_other_options(self.app.conf.settings, bound.arguments.get("other", {}))
        on_commit(functools.partial(self.apply_async, *args, **kwargs))


def _check_retry_extras(
    req: Request,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    throw: bool,
    options: Mapping[str, Any],
) -> None:
    """Refuse what Celery's retry() takes and conveyor's does not, saying why."""
    if options:
        raise ConfigurationError(
            f"retry({', '.join(f'{k}=' for k in sorted(options))}) is not supported: a retry "
            "runs the same message again, in its queue; send a new call with apply_async for "
            "other options"
        )
    if throw is not True:
        raise ConfigurationError(
            "retry(throw=False) is not supported: conveyor's retry always raises Retry; "
            "write `raise self.retry(...)`"
        )
    same_args = args is None or tuple(args) == tuple(req.args)
    if not same_args or (kwargs is not None and dict(kwargs) != dict(req.kwargs)):
        raise ConfigurationError(
            "retry with other args/kwargs is not supported: a retry runs the same message "
            "again; send a new call (apply_async) with the new arguments and return"
        )
