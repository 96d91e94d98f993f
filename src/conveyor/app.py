"""The Conveyor app: task registry, settings, and the wiring of broker and result store.

There is no global broker: each app opens its own broker and result store lazily, once per
process, from its URLs. The only process-wide state is the "current app" that `shared_task`
binds to, as in Celery.
"""

from __future__ import annotations

import atexit
import importlib
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, overload
from zoneinfo import ZoneInfo

from ._names import nearest
from .app_lifecycle import Lifecycle
from .brokers import open_broker
from .brokers.base import Broker, Envelope
from .calling import mapped
from .clock import SYSTEM_CLOCK, Clock
from .config import Config, Settings, resolve_urls
from .control import Control
from .errors import ConfigurationError, NotRegistered
from .events import EventBus, EventType
from .guard import budget_for
from .message import NO_LINKS, Links
from .options import CallOptions, TaskOptions, task_options
from .result import AsyncResult
from .result import AsyncResult as AsyncResultType
from .results import open_result_store
from .results.base import ResultStore
from .routing import Decision, RouteTable, table_for
from .sending import Calls, Sender
from .task import Task

AppTask = Task  # `Task` in Conveyor's body is the `app.Task` property (Celery's name)

if TYPE_CHECKING:
    from .autodiscover import Packages
    from .events.stream import EventPublisher
    from .scheduler.book import Schedules
    from .scheduler.stores.base import ScheduleStore

F = TypeVar("F", bound=Callable[..., Any])
_PUBLISHED_NAMES_TTL = 5.0

_apps: weakref.WeakSet[Conveyor] = weakref.WeakSet()
_current_app: Conveyor | None = None
_default_app: Conveyor | None = None
_shared: list[tuple[Callable[..., Any], TaskOptions]] = []


class Conveyor(Lifecycle):
    """A task queue application.

    `Conveyor("proj")` with no URLs uses the embedded SQLite file `./conveyor.db` for messages
    and results (CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND override that default).
    `include` lists modules that define tasks; workers import them at start.
    """

    def __init__(
        self,
        main: str | None = None,
        broker: str | None = None,
        backend: str | None = None,
        *,
        include: Sequence[str] = (),
        clock: Clock = SYSTEM_CLOCK,
        set_as_current: bool = True,
        task_cls: type[AppTask] | str | None = None,
        config_source: Any = None,
        namespace: str | None = None,
        changes: Mapping[str, Any] | None = None,
        autofinalize: bool = True,
        strict_typing: bool = True,
        fixups: Any = None,
        loader: Any = None,
        amqp: Any = None,
        events: Any = None,
        log: Any = None,
        control: Any = None,
        tasks: Any = None,
        **settings: Any,
    ) -> None:
        """Celery's constructor: `settings` keywords and `changes` are `app.conf` settings,
        checked here and kept above what `config_from_object` reads (see conveyor.preconf);
        `task_cls` is the class tasks are built from (`app.Task` is bound to this app);
        `config_source` is read as by `config_from_object`, with `namespace` its default
        namespace; `strict_typing=False` turns off the call-time argument check of every
        task. Celery's plug-ins for its own internals are refused with the reason."""
        from .preconf import check_autofinalize, refuse_internals, wants_django_fixup

        refuse_internals(
            {"loader": loader, "amqp": amqp, "events": events, "log": log, "control": control}
            | {"tasks": tasks}
        )
        django_fixup = wants_django_fixup(fixups)
        check_autofinalize(autofinalize)
        self.main = main
        self.conf = Config()
        self.clock = clock
        self.include = tuple(include)
        self.namespace = namespace
        self.strict_typing = bool(strict_typing)  # False: calls' arguments are not checked
        given_urls = {"broker_url": broker, "result_backend": backend}
        self._preconf = {
            **(changes or {}),
            **{key: url for key, url in given_urls.items() if url},  # app.conf shows them
            **settings,
        }
        self.conf.update(self._preconf)
        self._broker_arg = broker
        self._backend_arg = backend
        self._tasks: dict[str, AppTask] = {}
        self._lock = threading.Lock()
        self._broker: Broker | None = None
        self._results: ResultStore | None = None
        self._schedule_store: ScheduleStore | None = None
        self._events: EventBus | None = None
        self._sent_publisher: EventPublisher | None = None
        self._published: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        self._finalized = False
        self.warned: set[str] = set()  # routing warnings already logged (strict=False)
        self._routes: tuple[Settings | None, RouteTable | None] = (None, None)
        self._init_lifecycle(task_cls)
        if config_source is not None:
            self.config_from_object(config_source)
        _apps.add(self)
        from .contrib.django.fixup import install as install_django_fixup

        if django_fixup:  # Celery's Django fix-up, when DJANGO_SETTINGS_MODULE is set
            install_django_fixup(self)
        for fn, opts in _shared:
            self._register(fn, opts)
        if set_as_current:
            self.set_current()

    def __repr__(self) -> str:
        return f"<Conveyor {self.main or '__main__'}: {len(self._tasks)} tasks>"

    def set_current(self) -> None:
        """Make this the app that `shared_task` proxies resolve to."""
        global _current_app
        _current_app = self

    # -- settings ---------------------------------------------------------------------------
    def config_from_object(
        self, obj: Any, silent: bool = False, force: bool = False, namespace: str | None = None
    ) -> None:
        """Load settings from an object, dict or module path; see Config.config_from_object.
        `namespace` defaults to the app's (`Conveyor(namespace="CELERY")`); settings given to
        the constructor stay above what is read here, as in Celery. `silent=True` skips a
        module path that cannot be imported (Celery's flag); `force` is accepted and has no
        effect to ask for: settings are always read at once here, never lazily."""
        from .preconf import load_below

        def load() -> None:
            self.conf.config_from_object(obj, namespace=namespace or self.namespace)

        try:
            load_below(self.conf, self._preconf, load)
        except ImportError:
            if not (silent and isinstance(obj, str)):
                raise

    @property
    def urls(self) -> tuple[str, str]:
        """(broker URL, result store URL) in effect."""
        settings = self.conf.settings
        if settings.task_always_eager and not (self._broker_arg or settings.broker_url):
            urls = "memory://", self._backend_arg or settings.result_backend or "memory://"
        else:
            broker, backend = resolve_urls(settings, self._broker_arg, self._backend_arg)
            from .contrib.django.results import result_url

            urls = broker, result_url(self, backend)  # "django-db": the Django database
        if settings.task_always_eager and not settings.task_store_eager_result:
            # Results area: as Celery, eager outcomes stay in this process (tests need no
            # reachable result server) unless task_store_eager_result asks to store them.
            return urls[0], "memory://"
        return urls

    # -- tasks ------------------------------------------------------------------------------
    @overload
    def task(self, fn: F) -> AppTask: ...
    @overload
    def task(self, fn: None = None, **options: Any) -> Callable[[F], AppTask]: ...

    def task(self, fn: Any = None, **options: Any) -> Any:
        """Register a task: `@app.task` or `@app.task(name=..., queue=..., bind=True, ...)`.
        An unknown option is a TypeError naming the closest valid one."""
        opts = task_options(options)
        if fn is not None:
            return self._register(fn, opts)
        return lambda f: self._register(f, opts)

    def _register(self, fn: Callable[..., Any], opts: TaskOptions) -> AppTask:
        name = opts.name or default_task_name(fn, self.main)
        task = self._task_class(opts)()  # Celery's rule: task classes take no arguments
        AppTask.__init__(task, self, fn, name, self._with_task_cls_defaults(opts))
        return self._add(task)

    def _add(self, task: AppTask) -> AppTask:
        """Put a bound task in the registry; a different function under its name is an error."""
        name, fn = task.name, task.fn
        with self._lock:
            existing = self._tasks.get(name)
            if (
                existing is not None
                and existing.fn is not fn
                and _origin(existing.fn) != _origin(fn)
            ):
                raise ConfigurationError(
                    f"two different functions are registered as task {name!r}: "
                    f"{_origin(existing.fn)} and {_origin(fn)}; give one of them name=..."
                )
            self._tasks[name] = task
        if self._finalized:
            from .finalize import check_late_task

            check_late_task(self, task)
        return task

    @property
    def tasks(self) -> Mapping[str, AppTask]:
        """Registered tasks by name: a read-only live view, no copy (the worker reads it per
        delivery)."""
        return MappingProxyType(self._tasks)

    def import_modules(self) -> None:
        """Set Django up (Django projects), run pending `autodiscover_tasks()`, then import
        the modules named in `include`, so their tasks register."""
        from .autodiscover import import_pending

        import_pending(self)
        for module in self.include:
            importlib.import_module(module)
        settings = self.conf.settings  # Celery's `imports` and `include` settings name more
        for module in (*settings.imports, *settings.include):
            importlib.import_module(module)

    # -- autodiscovery (conveyor.autodiscover; Django: conveyor.contrib.django) --------------
    def autodiscover_tasks(
        self,
        packages: Packages = None,
        related_name: str | None = "tasks",
        force: bool = False,
    ) -> None:
        """Import `<package>.tasks` (or `related_name`) of each package when the app imports
        its task modules (`force=True`: now). `packages` is a list of names or a callable
        returning one; none means Django's INSTALLED_APPS (DJANGO_SETTINGS_MODULE must be
        set). A package without the module is skipped."""
        from .autodiscover import autodiscover

        autodiscover(self, packages, related_name, force)

    # -- routing ----------------------------------------------------------------------------
    @property
    def route_table(self) -> RouteTable:
        """The parsed routing settings (rebuilt when the settings change)."""
        settings = self.conf.settings
        cached_for, table = self._routes
        if cached_for is not settings or table is None:
            table = table_for(settings)
            self._routes = (settings, table)
        return table

    def finalize(self, when: str = "finalizing the app") -> None:
        """Configure the app (see `configure`), import `include`, then check every route
        against the registered tasks (see conveyor.finalize). Raises ConfigurationError listing
        the problems, unless `task_routes_strict=False`. Idempotent once it has passed; the
        first pass sends `on_after_finalize`."""
        if self._finalized:
            return
        from .finalize import problems, report

        self.configure()
        self.import_modules()
        report(self, problems(self), when)
        self._finalized = True
        self.on_after_finalize.send(sender=self)

    def route(
        self,
        name: str,
        task: AppTask | None,
        call: CallOptions,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Where one call goes: queue and priority (see conveyor.routing for the order)."""
        opts = task.options if task is not None else TaskOptions()
        table = self.route_table
        decision = table.decide(
            name, opts.queue, opts.priority, call.queue, call.priority, args, kwargs, task
        )
        if table.declared is not None:
            from .finalize import check_call

            check_call(self, name, decision)
        return decision

    # -- backends ---------------------------------------------------------------------------
    @property
    def control(self) -> Control:
        """Acting on sent calls: `app.control.revoke(task_id, terminate=False)`."""
        return Control(self)

    @property
    def broker(self) -> Broker:
        """This process's broker, opened on first use."""
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    self._broker = open_broker(self.urls[0], self.conf.settings, self.clock)
        return self._broker

    @property
    def results(self) -> ResultStore:
        """This process's result store, opened on first use."""
        if self._results is None:
            with self._lock:
                if self._results is None:
                    self._results = open_result_store(self.urls[1], self.conf.settings, self.clock)
        return self._results

    @property
    def schedule_store(self) -> ScheduleStore:
        """This process's schedule store (in the result backend's database), opened on first
        use."""
        if self._schedule_store is None:
            from .scheduler.stores import open_schedule_store

            with self._lock:
                if self._schedule_store is None:
                    self._schedule_store = open_schedule_store(
                        self.urls[1], self.conf.settings, self.clock
                    )
        return self._schedule_store

    @property
    def events(self) -> EventBus:
        """This process's event bus, made on first use: `app.events.subscribe(observer)` calls
        `observer(event)` on a thread of its own for every event emitted in this process (see
        conveyor.events for the delivery contract and docs/observability.md for the events)."""
        if self._events is None:
            with self._lock:
                if self._events is None:
                    self._events = EventBus()
        return self._events

    @property
    def schedules(self) -> Schedules:
        """The schedule at run time: `app.schedules.add(...)`, `.pause(name)`, `.list()`."""
        from .scheduler.book import Schedules

        return Schedules(self)

    def publish_sent_events(self) -> None:
        """Publish this process's task-sent events to the broker's event stream (`conveyor
        events`) from now on; senders call it when task_send_sent_event is on. Subscribes once.
        Best effort: what is still queued is flushed at interpreter exit (atexit), so a short
        script's events are not lost, but a process killed first loses them."""
        if self._sent_publisher is not None:
            return
        from .events.stream import publish

        broker, bus = self.broker, self.events  # each takes the lock itself
        with self._lock:
            if self._sent_publisher is None:
                self._sent_publisher = publish(bus, broker, [EventType.TASK_SENT])
                atexit.register(self._sent_publisher.close)

    def close(self) -> None:
        """Close the broker, result store and schedule store of this process (publishing
        what task-sent events are still queued first)."""
        publisher, self._sent_publisher = self._sent_publisher, None
        if publisher is not None:
            atexit.unregister(publisher.close)
            publisher.close()
        with self._lock:
            for backend in (self._broker, self._results, self._schedule_store):
                if backend is not None:
                    backend.close()
            self._broker = self._results = self._schedule_store = None

    # -- sending ----------------------------------------------------------------------------
    def AsyncResult(self, task_id: str) -> AsyncResult:
        return AsyncResult(task_id, self)

    def send_task(
        self,
        name: str,
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
        **options: Any,
    ) -> AsyncResultType:
        """Send a call by task name, with the same call options as `Task.apply_async` (Celery's
        routing_key, exchange, ignore_result, shadow, compression, retry, retry_policy… too:
        see conveyor.calling; and `link` / `link_error`, see canvas/callbacks.py). The name must
        be registered here or published by a worker that has started against this broker;
        otherwise NotRegistered names close matches."""
        # canvas: Celery's link / link_error, taken out before the other options are checked
        link, link_error = options.pop("link", None), options.pop("link_error", None)
        call = CallOptions(
            countdown=countdown,
            eta=eta,
            expires=expires,
            priority=priority,
            task_id=task_id,
            headers=dict(headers or {}),
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            **mapped(self.conf.settings, queue, options),  # Celery's options (task helper)
        )
        task = self._tasks.get(name)
        if task is None:
            self.check_task_name(name)
        links = NO_LINKS
        if link is not None or link_error is not None:
            from .canvas.signature import links_of

            links = links_of(link, link_error)
        with budget_for(call.retry_budget):
            result = self.publish(name, tuple(args or ()), dict(kwargs or {}), call, task, links)
        if links.link:
            from .canvas.signature import children_of

            result.children = children_of(self, links.link)
        return result

    def check_task_name(self, name: str) -> None:
        """Raise NotRegistered unless `name` is registered here or published by a worker. A
        name missing from the cached published names is looked up once more in the broker
        before it is refused: a worker may have published it since (a rolling deploy)."""
        if name in self._tasks or name in self.published_task_names():
            return
        published = self.published_task_names(refresh=True)
        if name in published:
            return
        known = set(self._tasks) | published
        close = nearest(name, known)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise NotRegistered(
            f"unknown task {name!r}: it is not registered in this app and no worker has "
            f"published it{hint}"
        )

    def published_task_names(self, refresh: bool = False) -> frozenset[str]:
        """Task names that workers published to the broker (cached for a few seconds on the
        app's clock; `refresh` reads them again now)."""
        fetched_at, names = self._published
        now = self.clock.now()
        if refresh or not 0 <= now - fetched_at <= _PUBLISHED_NAMES_TTL:
            names = frozenset(n for w in self.broker.workers() for n in w.task_names)
            self._published = (now, names)
        return names

    def publish(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call: CallOptions,
        task: AppTask | None,
        links: Links = NO_LINKS,
    ) -> AsyncResultType:
        """Build, encode and enqueue one call (or run it now in eager mode); `links` place it
        in a workflow."""
        calls = Calls(self, name, call, task)
        message = calls.message(args, kwargs, call.task_id, links)
        if self.conf.settings.task_always_eager:
            from .eager import run_eagerly

            return run_eagerly(self, message)
        self.finalize(f"sending {name}")
        envelope = calls.envelope(message)
        if self.broker.enqueue([envelope])[0]:  # False: the broker knew the id (a re-send)
            calls.announce([envelope])
        return self._sent_result(message.id, task, call)

    # -- results: the handle of a sent call (results area) -----------------------------------
    def _sent_result(self, task_id: str, task: Task | None, call: CallOptions) -> AsyncResultType:
        """The AsyncResult `publish` returns: `ignored` when the call's outcome is not stored
        (ignore_result of the call, else of the task, else the setting), so that its `get()`
        returns None at once, as Celery's does."""
        handle = AsyncResult(task_id, self)
        # The call's own ignore_result, where CallOptions carries one (apply_async option).
        ignore: bool | None = getattr(call, "ignore_result", None)
        if ignore is None and task is not None:
            ignore = task.options.ignore_result
        if ignore is None:
            ignore = self.conf.settings.task_ignore_result
        handle.ignored = bool(ignore)
        return handle

    def send_once(
        self,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        call: CallOptions,
        links: Links = NO_LINKS,
    ) -> bool:
        """Enqueue one call whose id is fixed by `call.task_id` (never run eagerly). True when
        it was newly stored, False when the broker already knew the id — someone sent this very
        call before (the scheduler's fires rely on it)."""
        if not call.task_id:
            raise ConfigurationError("send_once needs call.task_id")
        task = self._tasks.get(name)
        if task is None:
            self.check_task_name(name)
        calls = Calls(self, name, call, task)
        message = calls.message(args, kwargs, call.task_id, links)
        self.finalize(f"sending {name}")
        envelope = calls.envelope(message)
        stored = self.broker.enqueue([envelope])[0]
        if stored:
            calls.announce([envelope])
        return stored

    def send_many(
        self,
        task: AppTask | str,
        args_list: Iterable[Sequence[Any]],
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | None = None,
        priority: int | None = None,
        queue: str | None = None,
        chunk_size: int = 500,
    ) -> list[AsyncResultType]:
        """Send one call of `task` per item of `args_list` (each a tuple of positional
        arguments, all with the same `kwargs` and options), in broker round trips of
        `chunk_size` calls. Each chunk is stored atomically — all of it or none — and a chunk
        is acknowledged before the next is sent (the next is built meanwhile), so when this
        raises, the calls of earlier chunks are stored and later ones are not. Returns the
        AsyncResults in order."""
        if chunk_size < 1:
            raise ConfigurationError("send_many: chunk_size must be at least 1")
        name = task if isinstance(task, str) else task.name
        found = self._tasks.get(name)
        if found is None:
            self.check_task_name(name)
        calls = Calls(
            self, name, CallOptions(countdown=countdown, priority=priority, queue=queue), found
        )
        fixed = dict(kwargs or {})
        eager = self.conf.settings.task_always_eager
        if not eager:
            self.finalize(f"sending {name}")
        results: list[AsyncResultType] = []
        chunk: list[Envelope] = []
        with Sender(self.broker, calls.announce) as sender:
            for args in args_list:
                message = calls.message(tuple(args), fixed)
                if eager:
                    from .eager import run_eagerly

                    results.append(run_eagerly(self, message))
                    continue
                chunk.append(calls.envelope(message))
                results.append(AsyncResult(message.id, self))
                if len(chunk) >= chunk_size:
                    sender.send(chunk)
                    chunk = []
            if chunk:
                sender.send(chunk)
        return results

    def to_epoch(self, when: datetime) -> float:
        """Seconds since the epoch; a naive datetime is read in the `timezone` setting."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(self.conf.settings.timezone))
        return when.timestamp()


def _origin(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def default_task_name(fn: Callable[..., Any], main: str | None) -> str:
    """`module.function`, as Celery names tasks; a task defined in a script run as __main__
    takes the app's main name instead, so workers that import the app agree on it."""
    module = getattr(fn, "__module__", None) or "__main__"
    # __mp_main__: the script as multiprocessing's fork server and spawned children import it
    if module in ("__main__", "__mp_main__") and main:
        module = main
    return f"{module}.{fn.__name__}"


def current_app() -> Conveyor:
    """The app `shared_task` proxies use: the most recently created (or set) app, else the one
    given to `set_default()`. `conveyor.current_app` is a proxy to it (conveyor.local)."""
    app = _current_app or _default_app
    if app is None:
        raise ConfigurationError(
            "no Conveyor app exists yet: create one (app = Conveyor('proj')) before using the "
            "current app or sending a shared task"
        )
    return app


def registered_task(name: str) -> Task | None:
    """The task registered as `name` in the current app, else in any other live app."""
    app = _current_app or _default_app
    found = app.tasks.get(name) if app is not None else None
    if found is None:
        found = next((a.tasks[name] for a in list(_apps) if name in a.tasks), None)
    return found


class SharedTask:
    """What `@shared_task` returns: a stand-in that resolves to the task registered in the
    current app, so reusable modules need not import a specific app."""

    def __init__(self, fn: Callable[..., Any], options: TaskOptions) -> None:
        self._fn = fn
        self._options = options
        self.name = options.name or default_task_name(fn, None)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def _task(self) -> Task:
        app = current_app()
        task = app.tasks.get(self.name)
        return task if task is not None else app._register(self._fn, self._options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._task()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._task(), attr)

    def __repr__(self) -> str:
        return f"<SharedTask {self.name}>"


@overload
def shared_task(fn: Callable[..., Any]) -> SharedTask: ...
@overload
def shared_task(fn: None = None, **options: Any) -> Callable[[Callable[..., Any]], SharedTask]: ...


def shared_task(fn: Any = None, **options: Any) -> Any:
    """Define a task for every app (Celery's `shared_task`): `@shared_task` or
    `@shared_task(bind=True, ...)`."""
    opts = task_options(options)

    def register(f: Callable[..., Any]) -> SharedTask:
        _shared.append((f, opts))
        for app in list(_apps):
            app._register(f, opts)
        return SharedTask(f, opts)

    return register(fn) if fn is not None else register


# -- Celery's module paths under conveyor.app (app area) ------------------------------------
def _celery_module_paths() -> None:
    """`from conveyor.app.task import Task` and `from conveyor.app.base import Conveyor`, the
    renames of Celery's `celery.app.task` / `celery.app.base` (typed code imports them): small
    modules registered under those names, since conveyor.app is a module, not a package."""
    import sys
    from types import ModuleType

    for name, attrs in (("task", {"Task": AppTask}), ("base", {"Conveyor": Conveyor})):
        module = ModuleType(f"{__name__}.{name}", f"Celery's celery.app.{name} path, renamed.")
        module.__dict__.update(attrs, __all__=list(attrs))
        sys.modules.setdefault(module.__name__, module)


_celery_module_paths()
