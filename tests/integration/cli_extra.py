"""A task module the worker imports only when told to (`-I cli_extra`); a shared task, so it
registers with the app already loaded."""

from __future__ import annotations

import os

from conveyor import shared_task


@shared_task(name="cli.extra")
def extra() -> int:
    return os.getpid()
