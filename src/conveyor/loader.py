"""Find the app a command line names with `-A MODULE[:ATTR]`, as Celery does."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from .app import Conveyor
from .errors import ConfigurationError


def load_app(spec: str) -> Conveyor:
    """`proj` finds `proj.app`, `proj.celery`, the only Conveyor instance in `proj`, or the
    same in the submodule `proj.celery`; `proj.module:attr` names the instance directly.

    The current directory is put on sys.path first, as Celery does. An import error inside the
    user's module propagates unchanged so its traceback is shown, never swallowed.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise ConfigurationError(f"-A {spec!r}: expected MODULE or MODULE:ATTRIBUTE")
    module = _import(module_name)
    if attr:
        obj: object = module
        for part in attr.split("."):
            obj = getattr(obj, part, None)
        if not isinstance(obj, Conveyor):
            raise ConfigurationError(f"-A {spec}: {attr!r} in {module_name} is not a Conveyor app")
        obj.import_modules()
        return obj
    app = _find_in(module)
    if app is None and not module_name.endswith(".celery"):
        try:
            app = _find_in(importlib.import_module(module_name + ".celery"))
        except ModuleNotFoundError as exc:
            if exc.name != module_name + ".celery":
                raise
    if app is None:
        raise ConfigurationError(
            f"-A {spec}: no Conveyor app found in module {module_name!r}; name it `app` or "
            f"pass -A {module_name}:ATTRIBUTE"
        )
    app.import_modules()
    return app


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


def _find_in(module: ModuleType) -> Conveyor | None:
    for name in ("app", "celery"):
        candidate = getattr(module, name, None)
        if isinstance(candidate, Conveyor):
            return candidate
    found = {id(v): v for v in vars(module).values() if isinstance(v, Conveyor)}
    if len(found) == 1:
        return next(iter(found.values()))
    if len(found) > 1:
        raise ConfigurationError(
            f"module {module.__name__} holds {len(found)} Conveyor apps; pass -A "
            f"{module.__name__}:ATTRIBUTE to pick one"
        )
    return None
