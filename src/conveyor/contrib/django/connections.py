"""Django's database connections and caches in workers, as Celery's Django fix-up keeps them.

A worker process lives for days and runs tasks back to back; Django's own request cycle, which
closes stale connections, never runs there. So, plugged into the worker's signals only:

* `worker_init` (the worker's main process): its connections and caches are closed before
  it starts, and every task run in this process (`-P threads`, `-P solo`) is wrapped as below;
* `worker_process_init` (each `-P process` child): any connection the child inherited is
  dropped without a word to the server (closing it properly would close the parent's too,
  as both hold the same socket), then closed; tasks run in the child are wrapped as below,
  and a Django connection pool (`OPTIONS: {"pool": ...}`) is closed with its connection, as
  each child must open its own;
* `task_prerun` / `task_postrun`: every open connection of the running thread is closed
  before and after the task (and the caches after it), so each task starts with a fresh
  connection and a database restart costs one failed task at most. Calls run eagerly
  (`task_always_eager`, `task.apply()`) are left alone: they run inside the caller's
  request or test transaction.

Only processes that run a worker get these receivers; a web process importing the app does not.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ... import signals

_in_pool_child = False


def install_worker_hooks() -> None:
    """Connect the worker receivers (once per process, whatever the number of apps)."""
    signals.worker_init.connect(
        _on_worker_init, weak=False, dispatch_uid="conveyor.django.worker_init"
    )
    signals.worker_process_init.connect(
        _on_worker_process_init, weak=False, dispatch_uid="conveyor.django.worker_process_init"
    )


def _on_worker_init(**kwargs: Any) -> None:
    _wrap_tasks()
    close_database()
    close_caches()


def _on_worker_process_init(**kwargs: Any) -> None:
    global _in_pool_child
    _in_pool_child = True
    drop_inherited()
    close_database()
    close_caches()
    _wrap_tasks()


def _wrap_tasks() -> None:
    signals.task_prerun.connect(_before_task, weak=False, dispatch_uid="conveyor.django.prerun")
    signals.task_postrun.connect(_after_task, weak=False, dispatch_uid="conveyor.django.postrun")


def _before_task(sender: Any = None, **kwargs: Any) -> None:
    if not _is_eager(sender):
        close_database()


def _after_task(sender: Any = None, **kwargs: Any) -> None:
    if not _is_eager(sender):
        close_database()
        close_caches()


def _is_eager(task: Any) -> bool:
    return bool(getattr(getattr(task, "request", None), "is_eager", False))


def _django_ready() -> bool:
    from django.apps import apps

    return bool(apps.ready)


def _open_connections() -> list[Any]:
    from django.db import connections

    try:
        return list(connections.all(initialized_only=True))
    except TypeError:  # Django before 4.1 has no initialized_only
        return list(connections.all())


def drop_inherited() -> None:
    """Close the file descriptor of every connection this process inherited, with no network
    I/O (which would end the session the parent still uses)."""
    if not _django_ready():
        return
    from django.db.utils import InterfaceError

    for conn in _open_connections():
        raw = getattr(conn, "connection", None)
        if raw is None:
            continue
        with (
            contextlib.suppress(InterfaceError),
            conn.wrap_database_errors,
            contextlib.suppress(AttributeError, OSError, TypeError),  # no fileno: SQLite
        ):
            os.close(raw.fileno())


def close_database() -> None:
    """Close this thread's open Django connections (and, in a pool child, their pools). An
    error saying the connection was already closed is expected and ignored; any other
    database error propagates."""
    if not _django_ready():
        return
    from django.conf import settings
    from django.db import DatabaseError
    from django.db.utils import InterfaceError

    for conn in _open_connections():
        try:
            conn.close()
            pooled = settings.DATABASES.get(conn.alias, {}).get("OPTIONS", {}).get("pool")
            if pooled and _in_pool_child and hasattr(conn, "close_pool"):
                with contextlib.suppress(KeyError):
                    conn.close_pool()
        except InterfaceError:
            pass
        except DatabaseError as exc:
            text = str(exc)
            if "closed" not in text and "not connected" not in text:
                raise


def close_caches() -> None:
    """Close Django's cache connections (each is reopened on next use)."""
    if not _django_ready():
        return
    from django.core.cache import close_caches as close

    close()
