"""Shutdown signals: the first SIGTERM or SIGINT asks for a warm shutdown, the second is cold."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

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
            worker.cold_stop()
        log.warning("%s received: warm shutdown (send it again for a cold shutdown)", name)
        worker.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
