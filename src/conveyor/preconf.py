"""What `Conveyor(...)` accepts besides its URLs, as Celery's constructor does.

Settings given as keywords (`Conveyor("proj", task_acks_late=True)`) or as `changes={...}` are
checked as `app.conf` keys at once: a misspelt or unsupported one fails where it is written.
As in Celery, they sit above what `config_from_object` reads, so a settings module never
overrides them (a later `app.conf.x = ...` still does). Celery's hooks for replacing its own
machinery (`loader=`, `amqp=`, `events=`, `log=`, `control=`, `tasks=`, fix-ups other than
Django's) have nothing to replace in conveyor and are refused with the reason, never ignored.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from .config import Config
from .errors import ConfigurationError
from .task import Task

#: Celery constructor arguments that plug in Celery's internals, and why conveyor has none.
REFUSED: Mapping[str, str] = {
    "loader": "conveyor has one loader (settings come from app.conf and config_from_object)",
    "amqp": "conveyor speaks no AMQP: its brokers are SQLite, Redis and PostgreSQL",
    "events": "conveyor's events are built in (app.events, `conveyor events`)",
    "log": "logging is configured by the worker and the setup_logging signal",
    "control": "remote control is built in (app.control)",
    "tasks": "the task registry is the app's own (app.tasks)",
}


def refuse_internals(given: Mapping[str, Any]) -> None:
    """Raise for any Celery-internals argument given a value (None is Celery's default)."""
    for name, value in given.items():
        if value is not None:
            raise ConfigurationError(f"Conveyor({name}=...) is not supported: {REFUSED[name]}")


#: Celery's Django fix-up, by the names a project may give it in `fixups=`.
DJANGO_FIXUPS = frozenset({"celery.fixups.django:fixup", "conveyor.contrib.django.fixup:install"})


def wants_django_fixup(fixups: Any) -> bool:
    """Whether the Django fix-up is installed, as Celery decides: `fixups=None` (the default)
    means the built-in one (it acts only when DJANGO_SETTINGS_MODULE is set), `fixups=[]`
    none. Any other fix-up is refused: conveyor has no fix-up plug-ins."""
    if fixups is None:
        return True
    names = [fixups] if isinstance(fixups, str) else list(fixups)
    unknown = [name for name in names if name not in DJANGO_FIXUPS]
    if unknown:
        raise ConfigurationError(
            f"Conveyor(fixups={unknown!r}) is not supported: conveyor has no fix-up plug-ins "
            "besides Django's (on by default; fixups=[] turns it off)"
        )
    return bool(names)


def check_autofinalize(autofinalize: bool) -> None:
    """Celery's `autofinalize=False` (tasks unusable until `app.finalize()`) is refused
    rather than ignored."""
    if autofinalize is not True:
        raise ConfigurationError(
            "Conveyor(autofinalize=False) is not supported: conveyor finalizes the app when it "
            "is first used (worker start, first send); leave autofinalize out"
        )


def resolve_task_cls(value: type[Task] | str | None) -> type[Task]:
    """The class tasks are built from: `task_cls=` given as a Task subclass or as Celery's
    "module:Class" / "module.Class" string; conveyor.Task when not given."""
    if value is None:
        return Task
    cls = _import_symbol(value) if isinstance(value, str) else value
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigurationError(
            f"task_cls={value!r} must be a subclass of conveyor.Task (from conveyor import Task)"
        )
    return cls


def _import_symbol(path: str) -> Any:
    module_name, colon, attr = path.partition(":")
    if not colon:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(f"task_cls={path!r}: expected 'module:Class' or 'module.Class'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_below(conf: Config, preconf: Mapping[str, Any], load: Callable[[], None]) -> None:
    """Run `load` (which updates `conf`), then put back the current values of the keys given
    to the constructor: those sit above loaded settings, as in Celery. A key changed through
    `app.conf` since construction keeps that change."""
    kept = {key: conf[key] for key in preconf}
    load()
    if kept:
        conf.update(kept)
