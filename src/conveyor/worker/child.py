"""Entry point of a process-pool child.

The child imports the app by its `-A` path (children are spawned, not forked, so they never
inherit the parent's threads or open database connections), reports `ready`, then runs jobs
one at a time until told to stop. It ignores SIGINT and SIGTERM: the parent decides when a
child stops, so a terminal's Ctrl-C or a service manager's TERM reaches the worker's warm
shutdown instead of killing tasks mid-run.
"""

from __future__ import annotations

import os
import signal
import traceback
from multiprocessing.connection import Connection

from .executor import execute
from .jobs import Job


def child_main(app_path: str, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        from ..loader import load_app

        app = load_app(app_path)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        job: Job | None = conn.recv()
        if job is None:
            return
        task = app.tasks.get(job.message.task)
        if task is None:
            conn.send(
                ("lost", job.key, f"task {job.message.task!r} is not registered in the child")
            )
            continue
        conn.send(("done", job.key, execute(task, job.message, job.request)))
