"""Whether a worker is consuming, for probes (Kubernetes exec probes, systemd, scripts).

A worker is *consuming* when it is not stopping and every server it needs (broker, result
store) answers. While a guard reports its server down the worker is alive but "not consuming"
— the state Celery workers are known to sit in silently after a Redis reconnect. With
`--health-file PATH` a reporter service rewrites PATH every second (atomically, never touching
the broker, so it keeps reporting during an outage); `conveyor health PATH` reads it. The file is
mode 0600, and the servers it names are shown without their secrets (see `_urls.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigurationError
from ..guard import Guard
from .services import Service

log = logging.getLogger("conveyor.worker")
REPORT_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class Health:
    """A worker's state at `at` (epoch seconds). `detail` says why it is not consuming."""

    worker: str
    consuming: bool
    detail: str
    at: float

    @property
    def state(self) -> str:
        return "consuming" if self.consuming else "not consuming"


def current(worker: str, guards: Sequence[Guard], stopping: bool) -> Health:
    """The health of a worker from its guards."""
    if stopping:
        return Health(worker, False, "shutting down", time.time())
    for guard in guards:
        down = guard.down
        if down is not None:
            since, reason = down
            detail = f"{guard.what} unreachable for {time.monotonic() - since:.0f}s: {reason}"
            return Health(worker, False, detail, time.time())
    return Health(worker, True, "", time.time())


def write(path: Path, health: Health) -> None:
    """Replace the file at once (readers never see half a report). The file is created 0600
    whatever the umask: its detail names servers. A fresh temporary name each time, created
    exclusively, so a leftover file or a planted symlink is never written through."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps({**asdict(health), "state": health.state}))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> Health:
    data = json.loads(path.read_text())
    return Health(data["worker"], bool(data["consuming"]), data["detail"], float(data["at"]))


class HealthReporter(Service):
    """Writes `probe()` to `path` every second, a service of its own (services.py)."""

    def __init__(self, path: Path, probe: Callable[[], Health]) -> None:
        super().__init__("health", REPORT_EVERY)
        self._path = path
        self._probe = probe

    def run_once(self) -> None:
        try:
            write(self._path, self._probe())
        except OSError as exc:
            log.warning("cannot write the health file %s: %s", self._path, exc)

    def start(self) -> None:
        """Write the first report (ConfigurationError naming the file if it cannot be
        written), then rewrite it every second."""
        try:
            write(self._path, self._probe())
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the health file {self._path}: {exc.strerror or exc}; choose a "
                "path in a directory this user can write to"
            ) from None
        super().start()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the reports, then write the last one (the worker's final state)."""
        ended = super().stop(timeout)
        write(self._path, self._probe())
        return ended
