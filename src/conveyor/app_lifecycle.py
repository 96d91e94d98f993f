"""Celery's app lifecycle, as a part of `Conveyor` (app.py): the task class and class-based
tasks (`task_cls`, `app.Task`, `register_task`), the configure and finalize signals with
`add_periodic_task`, `set_default`, `app.start()`, and Celery's small conveniences
(`config_from_envvar`, `signature`, `now`, `with app:`). Split from app.py, which holds the
registry, settings and sending; `Conveyor` inherits this class.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from .errors import ConfigurationError
from .options import TaskOptions, task_options
from .task import Task

if TYPE_CHECKING:
    from .app import Conveyor
    from .canvas.signature import Signature
    from .clock import Clock
    from .config import Config
    from .signals import Signal

AppTask = Task  # `Task` in the class body below is the `app.Task` property (Celery's name)
log = logging.getLogger("conveyor.app")


class Lifecycle:
    """The part of `Conveyor` that gives Celery's app lifecycle (see the module docstring)."""

    main: str | None
    conf: Config
    clock: Clock
    task_cls: type[AppTask]
    configured: bool
    on_configure: Signal
    on_after_configure: Signal
    on_after_finalize: Signal
    _task_base: type[AppTask] | None
    _pending_periodic: list[tuple[str, dict[str, Any], str | None]]

    if TYPE_CHECKING:  # given by Conveyor

        def _add(self, task: AppTask) -> AppTask: ...
        def close(self) -> None: ...
        def config_from_object(
            self,
            obj: Any,
            silent: bool = False,
            force: bool = False,
            namespace: str | None = None,
        ) -> None: ...

    def _init_lifecycle(self, task_cls: type[AppTask] | str | None) -> None:
        from .preconf import resolve_task_cls
        from .signals import Signal

        self.task_cls: type[AppTask] = resolve_task_cls(task_cls)
        self._task_base: type[AppTask] | None = None
        self.configured = False
        self._pending_periodic: list[tuple[str, dict[str, Any], str | None]] = []
        self.on_configure = Signal("app.on_configure")
        self.on_after_configure = Signal("app.on_after_configure", ("source",))
        self.on_after_finalize = Signal("app.on_after_finalize")

    @property
    def Task(self) -> type[AppTask]:
        """The base task class bound to this app (Celery's `app.Task`): subclass it for a
        class-based task (`app.register_task`) or a `base=` of `@app.task`."""
        return self.task_base()

    @Task.setter
    def Task(self, base: type[AppTask] | str) -> None:
        """`app.Task = MyBaseTask` changes the class later tasks are built from (Celery's
        application guide), as `task_cls=` does."""
        from .preconf import resolve_task_cls

        self.task_cls = resolve_task_cls(base)
        self._task_base = None

    def set_default(self) -> None:
        """Make this the app `current_app` falls back to when no app is current (Celery's
        `set_default`; see conveyor.local)."""
        from . import app as app_module

        app_module._default_app = self._app_self()

    def _app_self(self) -> Conveyor:
        """This object as the Conveyor it is part of (Conveyor is the only class using this)."""
        return cast("Conveyor", self)

    def _task_class(self, opts: TaskOptions) -> type[AppTask]:
        cls = opts.base if opts.base is not None else self.task_cls
        if not issubclass(cls, AppTask):
            raise ConfigurationError(
                f"base={cls.__name__} must subclass conveyor.Task (from conveyor import Task)"
            )
        return cls

    def _with_task_cls_defaults(self, opts: TaskOptions) -> TaskOptions:
        """Options the `task_cls` class sets as attributes (`max_retries = 5`) fill in those
        the decorator left at their defaults; `base=` classes already did (options.py)."""
        if opts.base is not None or self.task_cls is AppTask:
            return opts
        from .options import _inherited_options

        defaults = TaskOptions()
        inherited = {
            key: value
            for key, value in _inherited_options(self.task_cls).items()
            if getattr(opts, key) == getattr(defaults, key)
        }
        return dataclasses.replace(opts, **inherited) if inherited else opts

    def task_base(self) -> type[AppTask]:
        """The class `app.Task` gives: `task_cls` bound to this app (made once)."""
        if self._task_base is None:
            base = self.task_cls
            namespace = {"_app": self, "__module__": base.__module__, "__doc__": base.__doc__}
            self._task_base = type(base.__name__, (base,), namespace)
            self._task_base.__qualname__ = base.__qualname__
        return self._task_base

    def register_task(self, task: AppTask | type[AppTask], **options: Any) -> AppTask:
        """Register a class-based task (Celery's `register_task`): an instance, or a class
        that is instantiated with no arguments, defining `run(self, ...)`. Its name is its
        `name` attribute, else `module.ClassName`; its option-named class attributes
        (`max_retries = 5`) and `options` (as `@app.task` takes) set its options. Returns the
        registered instance."""
        instance = task() if isinstance(task, type) else task
        cls = type(instance)
        if not isinstance(instance, AppTask):
            raise ConfigurationError(
                f"register_task needs a conveyor.Task subclass or instance, got {task!r}"
            )
        if cls.run is AppTask.run:
            raise ConfigurationError(
                f"{cls.__qualname__} defines no run() method: a class-based task must define "
                "run(self, ...), the body the worker calls"
            )
        from .app import default_task_name

        name = getattr(instance, "name", None) or default_task_name(cls, self.main)
        opts = task_options({**options, "name": name, "base": cls})
        AppTask.__init__(instance, self._app_self(), instance.run, name, opts)
        return self._add(instance)

    def configure(self) -> None:
        """Mark the settings as loaded, once: send `on_configure`, add the periodic tasks
        `add_periodic_task` was given before, then send `on_after_configure` (with `source`,
        the settings). Celery does this when the settings are first read; conveyor does it when
        the app is loaded for a command (`-A`, worker pool children included) or finalized
        (worker start, scheduler start, first send), whichever comes first."""
        if self.configured:
            return
        self.on_configure.send(sender=self)
        self.configured = True
        pending, self._pending_periodic = self._pending_periodic, []
        for key, entry, name in pending:
            self._add_periodic(key, entry, name)
        self.on_after_configure.send(sender=self, source=self.conf)

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Any,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        **opts: Any,
    ) -> str:
        """Add a `beat_schedule` entry sending `sig` on `schedule` (seconds, a timedelta or a
        crontab); `opts` are its send options (queue, priority, expires…). Checked at once;
        added when the app is configured (at once if it is). Returns the entry's key: `name`,
        or the call written out, as Celery's (see conveyor.periodic)."""
        from .periodic import periodic_entry
        from .scheduler.schedule import parse_entry

        key, entry = periodic_entry(schedule, sig, args, kwargs, name, **opts)
        parse_entry(key, entry)
        if self.configured:
            self._add_periodic(key, entry, name)
        else:
            self._pending_periodic.append((key, entry, name))
        return key

    def _add_periodic(self, key: str, entry: dict[str, Any], name: str | None) -> None:
        current = dict(self.conf.settings.beat_schedule)
        if name is None and key in current:
            log.warning(
                "periodic task %r replaced an earlier one with the same key; pass name= to "
                "add_periodic_task to keep both",
                key,
            )
        current[key] = entry
        self.conf.update(beat_schedule=current)

    @property
    def steps(self) -> Any:
        """Celery's bootsteps (`app.steps["worker"].add(...)`): refused, with what to use."""
        raise ConfigurationError(
            "app.steps: conveyor workers have no bootsteps to extend. For a liveness probe run "
            "`conveyor worker --health-file FILE` and probe with `conveyor health FILE`; for "
            "code at worker start or stop, connect the worker signals (conveyor.signals)"
        )

    @property
    def user_options(self) -> Any:
        """Celery's extra command-line options (`app.user_options["worker"]`): refused."""
        raise ConfigurationError(
            "app.user_options: conveyor's commands take no extra options from the app; read "
            "your own settings from the environment or app.conf instead"
        )

    def start(self, argv: Sequence[str] | None = None) -> int:
        """Run the `conveyor` command line on this app (`python tasks.py worker -l INFO`
        with `app.start()` at the end of tasks.py); see conveyor.starting."""
        from .starting import start

        return start(self._app_self(), argv)

    def worker_main(self, argv: Sequence[str] | None = None) -> int:
        """`start` for the worker command: `app.worker_main(["worker", "-l", "INFO"])`."""
        from .starting import worker_main

        return worker_main(self._app_self(), argv)

    def config_from_envvar(
        self, variable_name: str, silent: bool = False, force: bool = False
    ) -> bool:
        """Read settings from the module named by environment variable `variable_name`
        (Celery's). A variable that is not set raises ConfigurationError naming it, unless
        `silent`; returns whether settings were read."""
        module = os.environ.get(variable_name)
        if not module:
            if silent:
                return False
            raise ConfigurationError(
                f"config_from_envvar: the environment variable {variable_name} is not set; set "
                "it to the module that holds your settings (e.g. proj.settings)"
            )
        self.config_from_object(module, silent=silent, force=force)
        return True

    def signature(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Signature:
        """A signature of task `name` bound to this app (Celery's `app.signature`); `options`
        as `Signature.set` takes them."""
        from .canvas.signature import signature

        return signature(name, args, kwargs, app=self._app_self()).set(**options)

    @property
    def timezone(self) -> ZoneInfo:
        """The `timezone` setting as a zone."""
        return ZoneInfo(self.conf.settings.timezone)

    def now(self) -> datetime:
        """The time now on the app's clock, in its `timezone`."""
        return datetime.fromtimestamp(self.clock.now(), tz=self.timezone)

    def __enter__(self) -> Conveyor:
        return self._app_self()

    def __exit__(self, *exc: object) -> None:
        """`with Conveyor(...) as app:` closes the app's backends on leaving (Celery's)."""
        self.close()
