"""Celery's Django fix-up: what an app created while DJANGO_SETTINGS_MODULE is set gets.

Installed by `Conveyor(...)` itself when that variable is set (Celery's "First steps with
Django" sets it in `proj/celery.py`, before creating the app). It then:

* sets Django up (`django.setup()`) when the app imports its task modules — in a worker, a
  scheduler and each process-pool child, before `autodiscover_tasks()` reads INSTALLED_APPS.
  A process where Django is already set up (a web server) is left as it is;
* runs Django's system checks when a worker or a scheduler starts (`worker_init`,
  `beat_init`), once, in its main process, logging what they report (Celery runs them too; set
  CONVEYOR_SKIP_CHECKS or CELERY_SKIP_CHECKS to skip them);
* gives `autodiscover_tasks()` with no packages the names of INSTALLED_APPS;
* manages database connections in workers (conveyor.contrib.django.connections): closed when
  a worker starts and before and after every task, and never shared with a pool child.

Nothing here imports Django until the fix-up is installed, so apps without Django pay nothing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ... import signals
from ...errors import ConfigurationError

if TYPE_CHECKING:
    from ...app import Conveyor

log = logging.getLogger("conveyor.django")

SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"

_fixups: weakref.WeakKeyDictionary[Conveyor, DjangoFixup] = weakref.WeakKeyDictionary()
_setup_lock = threading.Lock()
_checked = False  # the system checks ran in this process


class DjangoFixup:
    """The Django fix-up of one app (see the module docstring). It holds no reference to the
    app: `_fixups` holds the app weakly, and a value naming its key would keep it alive."""

    def setup(self) -> bool:
        """Set Django up unless it already is; True once it is. False while Django is setting
        itself up (a task module imported, or a call sent, from an AppConfig.ready()): the
        caller tries again later. Idempotent, thread-safe."""
        from django.apps import apps

        if apps.ready:
            return True
        if apps.loading:
            return False
        with _setup_lock:
            if not apps.ready:
                import django

                django.setup()
        return True

    def installed_apps(self) -> list[str]:
        """The package names of Django's installed apps (setting Django up first)."""
        if not self.setup():
            raise ConfigurationError(
                "autodiscover_tasks(force=True) with no packages was called while Django "
                "loads its apps: leave out force=True, so the discovery waits for Django"
            )
        from django.apps import apps

        return [config.name for config in apps.get_app_configs()]


def install(app: Conveyor) -> DjangoFixup | None:
    """Install the fix-up on `app` when DJANGO_SETTINGS_MODULE is set (Conveyor.__init__ calls
    this); returns it, or None. With the variable set but Django not installed, a warning says
    so and nothing is installed, as in Celery."""
    if not os.environ.get(SETTINGS_VARIABLE):
        return None
    if importlib.util.find_spec("django") is None:
        log.warning(
            "%s is set but Django is not installed: the Django fix-up is not applied "
            "(install Django, or unset %s)",
            SETTINGS_VARIABLE,
            SETTINGS_VARIABLE,
        )
        return None
    fixup = _fixups.get(app)
    if fixup is None:
        fixup = _fixups[app] = DjangoFixup()
        from .connections import install_worker_hooks

        install_worker_hooks()
        for started in (signals.worker_init, signals.beat_init):
            started.connect(_check_at_start, weak=False, dispatch_uid="conveyor.django.checks")
    return fixup


def fixup_of(app: Conveyor) -> DjangoFixup | None:
    """The app's fix-up, if it has one."""
    return _fixups.get(app)


def require_fixup(app: Conveyor, what: str) -> DjangoFixup:
    """The app's fix-up, installed now if DJANGO_SETTINGS_MODULE was set after the app was
    made; ConfigurationError saying what to do when the app is not a Django project's."""
    fixup = fixup_of(app) or install(app)
    if fixup is None:
        raise ConfigurationError(
            f"{what} reads Django's INSTALLED_APPS, but {SETTINGS_VARIABLE} is not set (or "
            "Django is not installed): set it before creating the app, as in "
            f"os.environ.setdefault({SETTINGS_VARIABLE!r}, 'proj.settings'), or pass the "
            "packages: autodiscover_tasks(['app1', 'app2'])"
        )
    return fixup


def installed_apps(app: Conveyor) -> list[str]:
    """INSTALLED_APPS' package names for `autodiscover_tasks()` with no packages."""
    return require_fixup(app, "autodiscover_tasks() with no packages").installed_apps()


def _check_at_start(**kwargs: Any) -> None:
    """Run the system checks when a worker or a scheduler starts (in its main process, once),
    as Celery does; other commands (`conveyor inspect`, `schedule list`) and pool children do
    not run them."""
    global _checked
    from django.apps import apps

    if _checked or skip_checks() or not apps.ready:
        return
    _checked = True
    run_checks()


def skip_checks() -> bool:
    """True when CONVEYOR_SKIP_CHECKS (or Celery's CELERY_SKIP_CHECKS) is set non-empty."""
    return bool(os.environ.get("CONVEYOR_SKIP_CHECKS") or os.environ.get("CELERY_SKIP_CHECKS"))


def run_checks() -> None:
    """Run Django's system checks and log what they report at its level (errors and
    criticals as errors, warnings as warnings, the rest as info). Like Celery, a failing check
    does not stop the worker; unlike a silent run, its message is in the worker's log."""
    from django.core import checks

    messages: list[Any] = checks.run_checks()
    for message in messages:
        if message.is_silenced():
            continue
        if message.is_serious():
            level = logging.ERROR
        else:
            level = logging.WARNING if message.level >= checks.WARNING else logging.INFO
        log.log(level, "Django system check: %s", message)
