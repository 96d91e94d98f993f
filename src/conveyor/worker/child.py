"""Entry point of a process-pool child.

The child imports the app by its `-A` path (usually already imported by the fork server it
came from, which never holds the worker's threads or database connections), sends the
`worker_process_init` signal (where users open connections), reports `ready`, then runs jobs
one at a time until told to stop, and sends `worker_process_shutdown` as it leaves. It
ignores SIGINT and SIGTERM: the parent decides when a child stops, so a terminal's Ctrl-C or a
service manager's TERM reaches the worker's warm shutdown instead of killing tasks mid-run.
SIGUSR1 is the soft time limit: it raises SoftTimeLimitExceeded in the running task (and
nothing between tasks).

After each job the child reports its peak resident memory (KiB), for
`worker_max_memory_per_child`.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType

from .. import signals
from ..app import Conveyor
from ..errors import SoftTimeLimitExceeded
from ..logformat import configure_child
from ..task import Task
from .jobs import Completion, Job
from .limits import LimitSignal
from .pools import run_job

_running = False


def _soft_limit(signum: int, frame: FrameType | None) -> None:
    if _running:
        raise SoftTimeLimitExceeded("soft time limit exceeded")


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


#: The modules of the worker's `-I/--include` (comma-separated), which each child imports too.
ENV_INCLUDE = "CONVEYOR_WORKER_INCLUDE"


def child_main(app_path: str, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _soft_limit)
    configure_child()  # the fork server started without the worker's logging: same format here
    try:
        from ..loader import load_app

        app = load_app(app_path)
        for module in filter(None, os.environ.get(ENV_INCLUDE, "").split(",")):
            importlib.import_module(module)  # the worker's -I/--include, imported there too
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    signals.worker_process_init.send(sender=None)
    try:
        _serve(app, conn)
    except (EOFError, OSError):
        return  # the worker is gone (killed): its lease keeper is gone too, nothing to report
    finally:
        signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)


def _serve(app: Conveyor, conn: Connection) -> None:
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job: Job | None = conn.recv()
        except (EOFError, OSError):
            raise
        except Exception as exc:  # a job this child cannot unpickle: report it, serve on
            conn.send(("lost", None, f"{type(exc).__name__}: {exc}", _peak_rss_kib()))
            continue
        if job is None:
            return
        if job.message.task not in app.tasks:
            reason = f"task {job.message.task!r} is not registered in the child"
            conn.send(("lost", job.key, reason, _peak_rss_kib()))
            continue
        done = _run(app.tasks.__getitem__, job)
        if done.result is not None:
            conn.send(("done", job.key, done.result, _peak_rss_kib()))
        else:
            conn.send(("lost", job.key, done.lost, _peak_rss_kib()))


def _run(lookup: Callable[[str], Task], job: Job) -> Completion:
    global _running
    _running = True
    try:
        return run_job(lookup, job)
    finally:
        while True:  # a soft-limit signal landing here must not escape: the task is done
            try:
                _running = False
                break
            except LimitSignal:
                continue
