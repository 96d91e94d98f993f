"""`conveyor worker --detach` and `conveyor beat --detach`: run the same command again in the
background, as Celery's `--detach` does, and return once it has started.

Contract:
* The detached process is `python -m conveyor` with this process's arguments (sys.argv, as
  Celery's) minus `-D` / `--detach` (refused when sys.argv holds neither: called from Python),
  started in a new session (no controlling terminal: closing the terminal does not stop it) in
  the same working directory, with stdin from /dev/null and stdout and stderr
  appended to `--logfile` (discarded without one), so that start-up errors land in the log file.
* Checked here, before it starts, as Celery checks before detaching: the log file opens for
  appending (the option's own check) and the pid file does not name a live process (a stale one
  is removed).
* With `--pidfile`, this command waits until the detached process has written its pid there
  (it does once its app is loaded and its logging set up), prints that pid and exits 0; if it
  exits first, or has not written it within DETACH_WAIT seconds, this command exits 1 saying so.
  Without `--pidfile` it prints the pid and exits 0 at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import IO, NoReturn

import click

from .files import Pidfile, read_pid

#: Seconds to wait for a detached worker's pid file.
DETACH_WAIT = 60.0
_FLAGS = frozenset({"-D", "--detach"})


def detach(who: str, pidfile: Path | None, logfile: str | None) -> NoReturn:
    """Start this command (`who`: "worker" or "beat", for messages) detached (see the module
    docstring) and exit."""
    if not _FLAGS & set(sys.argv[1:]):
        raise click.UsageError(
            "--detach starts this process's command line (sys.argv) again; this command was "
            "not given one (it was called from Python): run `conveyor ... --detach` instead"
        )
    if pidfile is not None:
        Pidfile.acquire(pidfile).release()  # refuses a live one, clears a stale one
    argv = [sys.executable, "-m", "conveyor", *(a for a in sys.argv[1:] if a not in _FLAGS)]
    with _output(logfile) as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    where = f"; its output goes to {logfile}" if logfile else ""
    if pidfile is not None:
        _wait_for_pidfile(process, pidfile, f"the detached {who}", where)
    click.echo(f"conveyor {who} detached: pid {process.pid}{where}", err=True)
    sys.exit(0)


def _output(logfile: str | None) -> IO[bytes]:
    """Where the detached worker's stdout and stderr go: the log file, or /dev/null."""
    return open(logfile or "/dev/null", "ab")  # the caller closes it (with)


def _wait_for_pidfile(
    process: subprocess.Popen[bytes], pidfile: Path, what: str, where: str
) -> None:
    """Return once `process` has written its pid to `pidfile`; exit 1 if it exits first or
    does not write it within DETACH_WAIT seconds."""
    deadline = time.monotonic() + DETACH_WAIT
    while time.monotonic() < deadline:
        if read_pid(pidfile) == process.pid:
            return
        code = process.poll()
        if code is not None:
            raise click.ClickException(f"{what} exited with code {code} before it started{where}")
        time.sleep(0.05)
    raise click.ClickException(
        f"{what} (pid {process.pid}) has not written its pid file {pidfile} after "
        f"{DETACH_WAIT:g} s; it is still starting or stuck{where}"
    )
