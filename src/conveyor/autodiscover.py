"""`app.autodiscover_tasks()`: import the task module (`tasks.py` by default) of each package.

The packages are a list of names, a callable returning one (read late, when the discovery
runs), or nothing at all — then they are Django's INSTALLED_APPS, read once Django is set up
(see conveyor.contrib.django). A package without the module is skipped, as in Celery; an
import error raised *inside* a module that exists propagates, so its traceback is shown.

Discovery is lazy, as in Celery: it runs when the app imports its task modules
(`app.import_modules()`: when a worker, a scheduler or `-A` loads the app, or when the app
first sends). `force=True` runs it at once. Each discovery runs once per process; a task module
that itself triggers `import_modules` (by sending at import time) does not discover again.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .app import Conveyor

Packages = Iterable[str] | Callable[[], Iterable[str]] | None


@dataclass(frozen=True, slots=True)
class Discovery:
    """One `autodiscover_tasks(...)` call: which packages, and which module to find in each
    (`related_name`; None imports the packages themselves)."""

    packages: Packages
    related_name: str | None = "tasks"

    def package_names(self, app: Conveyor) -> list[str]:
        """The package names, read now: the list, the callable's answer, or Django's apps."""
        if self.packages is None:
            from .contrib.django.fixup import installed_apps

            return installed_apps(app)
        names = self.packages() if callable(self.packages) else self.packages
        if isinstance(names, str):
            raise ConfigurationError(
                f"autodiscover_tasks({names!r}): pass a list of package names, e.g. "
                f"autodiscover_tasks([{names!r}])"
            )
        return list(names)

    def run(self, app: Conveyor) -> list[ModuleType]:
        """Import the related module of every package; returns the modules found."""
        found = (find_related_module(p, self.related_name) for p in self.package_names(app))
        return [module for module in found if module is not None]


@dataclass
class _Pending:
    """The discoveries an app has not run yet; `running` is held while they run."""

    waiting: list[Discovery] = field(default_factory=list)
    running: threading.Lock = field(default_factory=threading.Lock)


_pending: weakref.WeakKeyDictionary[Conveyor, _Pending] = weakref.WeakKeyDictionary()


def autodiscover(
    app: Conveyor, packages: Packages, related_name: str | None, force: bool
) -> list[ModuleType]:
    """Register a discovery for `app` (run by `import_pending`), or run it now with `force`.
    With no packages, the app must be a Django project's: DJANGO_SETTINGS_MODULE set."""
    if packages is None:
        from .contrib.django.fixup import require_fixup

        require_fixup(app, "autodiscover_tasks() with no packages")
    discovery = Discovery(packages, related_name)
    if force:
        return discovery.run(app)
    _pending.setdefault(app, _Pending()).waiting.append(discovery)
    return []


def import_pending(app: Conveyor) -> None:
    """Set Django up when the app is a Django project's, then run the app's pending
    discoveries, in the order they were asked for. A discovery that raises stays pending (the
    next `import_modules` tries it again); the ones before it are done. While Django is still
    loading its apps, or while another call runs them (another thread, or a task module that
    sends at import time), the discoveries are left for later and this returns at once."""
    from .contrib.django.fixup import fixup_of

    fixup = fixup_of(app)
    if fixup is not None and not fixup.setup():
        return
    pending = _pending.get(app)
    if pending is None or not pending.running.acquire(blocking=False):
        return
    try:
        while pending.waiting:
            pending.waiting[0].run(app)
            pending.waiting.pop(0)
    finally:
        pending.running.release()


def find_related_module(package: str, related_name: str | None) -> ModuleType | None:
    """`package.related_name` imported, or None when the package has no such module. With no
    `related_name`, the package itself. A name that is not a package (Django's
    `"polls.apps.PollsConfig"` in INSTALLED_APPS) is looked up one level up, as Celery does."""
    try:
        module = importlib.import_module(package)
        if not related_name:
            return module
    except ModuleNotFoundError:
        parent = package.rpartition(".")[0]
        if not parent:
            raise
        package = parent
    name = f"{package}.{related_name}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None  # the package has no such module: nothing to discover there
        raise  # a missing import inside the module: the user's error, shown as it is
