"""Local files the command line writes: the pid file, and checks of file options.

Pid file contract (`worker --pidfile`, `beat --pidfile`), as Celery's behaves, made strict:
* Created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 whatever the umask, holding "<pid>\\n".
* A file already there naming a live process is refused: another instance runs (a process of
  another user counts as live). A process cannot be told from its pid alone, so a pid that is
  alive again after a reboot counts as live too: remove the file by hand then.
* A file naming a dead process, our own pid (a restarted container reuses its pids) or no pid
  at all is stale: it is removed and creation retried.
* A symbolic link (or anything that is not a regular file) at the path is refused and left
  alone: a pid file is never written, read or removed through a link.
* At a clean exit the file is removed only if it is still the one this process created and
  still holds this pid.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # NONBLOCK: a FIFO planted there never hangs
_ATTEMPTS = 5


class PidfileError(click.ClickException):
    """The pid file cannot be taken; the message says why and what to do."""


class Pidfile:
    """A pid file this process holds (see the module docstring)."""

    def __init__(self, path: Path, identity: tuple[int, int]) -> None:
        self.path = path
        self._identity = identity  # (st_dev, st_ino) of the file we created

    @classmethod
    def acquire(cls, path: Path) -> Pidfile:
        """Create the pid file, clearing a stale one; PidfileError when another process
        holds it or the path is not a regular file."""
        for attempt in range(_ATTEMPTS):
            try:
                fd = os.open(path, _CREATE, 0o600)
            except FileExistsError:
                _clear_stale(path, last=attempt >= _ATTEMPTS - 2)
                continue
            except OSError as exc:
                raise PidfileError(f"cannot create the pid file {path}: {exc.strerror}") from None
            with os.fdopen(fd, "w", encoding="ascii") as out:
                os.fchmod(out.fileno(), 0o600)
                out.write(f"{os.getpid()}\n")
                info = os.fstat(out.fileno())
            return cls(path, (info.st_dev, info.st_ino))
        raise PidfileError(f"the pid file {path} keeps reappearing; is another process starting?")

    def release(self) -> None:
        """Remove the file if it is still ours; leave anything else in place."""
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity and _pid_in(self.path) == os.getpid():
                os.unlink(self.path)


def _clear_stale(path: Path, last: bool) -> None:
    """Remove the file at `path` if it is stale; raise PidfileError if it is live or is not a
    regular file. A file that vanished meanwhile needs nothing; an empty one may be another
    process's, created but not written yet, so it is given a moment unless this is the `last`
    look."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PidfileError(
                f"the pid file {path} is a symbolic link; conveyor never writes through one. "
                "Remove the link or choose another --pidfile"
            ) from None
        raise PidfileError(f"cannot read the pid file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PidfileError(f"{path} is not a regular file; choose another --pidfile")
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    if not data and not last:
        time.sleep(0.1)
        return
    pid = _parse_pid(data)
    if pid is not None and pid != os.getpid() and _alive(pid):
        raise PidfileError(
            f"the pid file {path} names process {pid}, which is running: another instance is "
            "using it. Stop that process first, or choose another --pidfile"
        )
    with contextlib.suppress(FileNotFoundError):
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino):  # not replaced meanwhile
            os.unlink(path)


def _parse_pid(data: bytes) -> int | None:
    text = data.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def _pid_in(path: Path) -> int | None:
    fd = os.open(path, _READ)
    try:
        return _parse_pid(os.read(fd, 64))
    finally:
        os.close(fd)


def read_pid(path: Path) -> int | None:
    """The pid a pid file names, if it is a regular file holding one and that process is
    alive; None otherwise (no file, a symbolic link, no pid, a dead process)."""
    try:
        pid = _pid_in(path)
    except OSError:  # missing, a link (O_NOFOLLOW), unreadable
        return None
    return pid if pid is not None and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def exit_on_sigterm() -> None:
    """Until the worker or scheduler installs its own handlers, make SIGTERM end the process
    through its `finally` blocks (so the pid file is removed), not kill it outright."""

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


def in_existing_directory(
    ctx: click.Context, param: click.Parameter, value: Path | str | None
) -> Path | str | None:
    """Click callback for file options: the file's directory must exist (conveyor does not
    create directories: a typo would otherwise put the file somewhere nobody looks)."""
    if value is None:
        return None
    parent = Path(value).absolute().parent
    if not parent.is_dir():
        raise click.BadParameter(
            f"the directory {parent} does not exist: create it first, or give a path in an "
            "existing directory",
            ctx=ctx,
            param=param,
        )
    return value


def _cannot_write(ctx: click.Context, param: click.Parameter, what: str, exc: OSError) -> Exception:
    return click.BadParameter(
        f"cannot write {what}: {exc.strerror or exc}. Choose a path in a directory this user "
        "can write to",
        ctx=ctx,
        param=param,
    )


def writable_logfile(
    ctx: click.Context, param: click.Parameter, value: Path | str | None
) -> Path | str | None:
    """Click callback for `--logfile`: an existing directory, and the file opens for appending
    (it is created now, as logging would create it a moment later)."""
    value = in_existing_directory(ctx, param, value)
    if value is not None:
        try:
            with open(value, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise _cannot_write(ctx, param, f"the log file {value}", exc) from None
    return value


def writable_directory(
    ctx: click.Context, param: click.Parameter, value: Path | str | None
) -> Path | str | None:
    """Click callback for files written by replacing them (`--health-file`): an existing
    directory in which a new file can be created (a probe file is made and removed), so that
    a directory such as /proc is refused before the worker starts, not with a traceback."""
    value = in_existing_directory(ctx, param, value)
    if value is not None:
        parent = Path(value).absolute().parent
        try:
            fd, probe = tempfile.mkstemp(prefix=".conveyor-probe.", dir=parent)
        except OSError as exc:
            raise _cannot_write(ctx, param, f"a file in {parent}", exc) from None
        os.close(fd)
        os.unlink(probe)
    return value


def logfile_option() -> Callable[[Any], Any]:
    """`-f/--logfile`, in an existing, writable directory (worker and beat)."""
    return click.option(
        "-f",
        "--logfile",
        type=click.Path(dir_okay=False),
        callback=writable_logfile,
        help="Log to this file.",
    )


def pidfile_option(who: str) -> Callable[[Any], Any]:
    """`--pidfile` as the contract above describes it; `who` names the process in the help."""
    return click.option(
        "--pidfile",
        type=click.Path(dir_okay=False, path_type=Path),
        callback=in_existing_directory,
        help=f"Write the {who}'s pid here (0600; refused while another live process holds it).",
    )
