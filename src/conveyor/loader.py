"""Find the app a command line names with `-A`, as Celery does.

`-A proj` finds `proj.app`, `proj.celery`, the app in the submodule `proj.celery` (a package),
or the only Conveyor instance in `proj`. `-A proj.celery:app` names the attribute after the
colon; `-A main.celery` (no colon) is the attribute `celery` of module `main` when `main` has
one, else the module `main.celery` searched as above. Once found, the app's `include` modules
are imported and the app is configured (its `on_after_configure` receivers run).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from .app import Conveyor
from .errors import ConfigurationError

_preset: dict[str, Conveyor] = {}


@contextmanager
def preset(spec: str, app: Conveyor) -> Iterator[None]:
    """While the block runs, `load_app(spec)` gives `app` itself (`app.start()` runs the
    command line on an app object that its module's import would otherwise create anew)."""
    _preset[spec] = app
    try:
        yield
    finally:
        _preset.pop(spec, None)


def load_app(spec: str) -> Conveyor:
    """The app `spec` names (see the module docstring), its modules imported and configured.

    The current directory is put on sys.path first, as Celery does. An import error inside the
    user's module propagates unchanged so its traceback is shown, never swallowed.
    """
    app = _preset.get(spec)
    if app is None:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        app = _find(spec)
    app.import_modules()
    app.configure()
    return app


def _find(spec: str) -> Conveyor:
    module_name, colon, attr = spec.partition(":")
    if not module_name or (colon and not attr):
        raise ConfigurationError(f"-A {spec!r}: expected MODULE, MODULE.ATTRIBUTE or MODULE:ATTR")
    if colon:
        return _attribute(spec, _import(module_name), attr)
    parent, _, last = module_name.rpartition(".")
    if parent:
        holder = _import(parent)
        found = getattr(holder, last, None)
        if isinstance(found, Conveyor):
            return found
        if found is not None and not isinstance(found, ModuleType):
            raise ConfigurationError(f"-A {spec}: {last!r} in {parent} is not a Conveyor app")
    return _in_module(spec, _import(module_name))


def _attribute(spec: str, module: ModuleType, attr: str) -> Conveyor:
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if not isinstance(obj, Conveyor):
        raise ConfigurationError(f"-A {spec}: {attr!r} in {module.__name__} is not a Conveyor app")
    return obj


def _in_module(spec: str, module: ModuleType) -> Conveyor:
    """Celery's search order: `app`, `celery`, the package's `celery` submodule, the only app."""
    for name in ("app", "celery"):
        candidate = getattr(module, name, None)
        if isinstance(candidate, Conveyor):
            return candidate
    if hasattr(module, "__path__"):
        try:
            return _in_module(spec, importlib.import_module(module.__name__ + ".celery"))
        except ModuleNotFoundError as exc:
            if exc.name != module.__name__ + ".celery":
                raise
        except ConfigurationError:
            pass  # no app there: look in the package itself
    found = {id(v): v for v in vars(module).values() if isinstance(v, Conveyor)}
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        raise ConfigurationError(
            f"module {module.__name__} holds {len(found)} Conveyor apps; pass -A "
            f"{module.__name__}:ATTRIBUTE to pick one"
        )
    raise ConfigurationError(
        f"-A {spec}: no Conveyor app found in module {module.__name__!r}; name it `app` or "
        f"pass -A {module.__name__}:ATTRIBUTE"
    )


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} ({exc}); run the command from the directory "
                "that contains it, or add that directory to PYTHONPATH"
            ) from exc
        raise
