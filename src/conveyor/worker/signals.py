"""Shutdown signals: the first SIGTERM or SIGINT asks for a warm shutdown, the second is cold.
Each sends the worker_shutting_down signal first (sender: the worker's name; `sig` the signal's
name, `how` "Warm" or "Cold", `exitcode` 0 or 1), as Celery does."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from .. import signals

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("conveyor.worker")


def install_shutdown_signals(worker: Worker) -> None:
    """Install the handlers when running in the main thread (signals can only be handled
    there); elsewhere the caller stops the worker with `worker.stop()`."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if worker.stopping:
            log.warning("%s again: cold shutdown", name)
            shutting_down(worker, name, cold=True)
            worker.cold_stop()
        shutting_down(worker, name, cold=False)
        log.warning("%s received: warm shutdown (send it again for a cold shutdown)", name)
        worker.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def shutting_down(worker: Worker, sig: str, cold: bool) -> None:
    """Send worker_shutting_down; a receiver's error is logged (Signal.send), never raised, so
    the shutdown goes ahead whatever the receivers do."""
    how, exitcode = ("Cold", 1) if cold else ("Warm", 0)
    signals.worker_shutting_down.send(
        sender=worker.options.name, sig=sig, how=how, exitcode=exitcode
    )
