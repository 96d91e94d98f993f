"""Celery worker options checked before the worker starts: those with no conveyor counterpart
(refused when given, with the reason and what to do instead, so that a Procfile or unit file
line copied from a Celery deployment fails at once with a clear message instead of being
silently ignored), Celery's pool names, and combinations that contradict each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import POOL_NAMES

F = TypeVar("F", bound=Callable[..., Any])

#: (spellings, takes a value, why conveyor refuses it and what to do instead)
REFUSED: tuple[tuple[tuple[str, ...], bool, str], ...] = (
    (
        ("--uid",),
        True,
        "conveyor never changes its user: start the worker as that user (systemd User=, "
        "the container's USER, or su)",
    ),
    (
        ("--gid",),
        True,
        "conveyor never changes its group: start the worker with that group (systemd Group=)",
    ),
    (
        ("--umask",),
        True,
        "set the umask of the shell or service that starts the worker (systemd UMask=)",
    ),
    (
        ("--executable",),
        True,
        "--detach runs the worker with the Python interpreter this command runs under",
    ),
    (
        ("--heartbeat-interval",),
        True,
        "a worker's heartbeat follows its lease (a third of visibility_timeout); change that",
    ),
    (
        ("-X", "--exclude-queues"),
        True,
        "a conveyor worker consumes only the queues it is given: list them with -Q",
    ),
)


def refused_options() -> Callable[[F], F]:
    """Click options for every REFUSED spelling; giving one is a usage error with its reason.
    Hidden from --help (docs/reference.md lists them)."""

    def add(f: F) -> F:
        for spellings, takes_value, reason in REFUSED:
            f = click.option(
                *spellings,
                is_flag=not takes_value,
                expose_value=False,
                hidden=True,
                callback=_refuse(reason),
            )(f)
        return f

    return add


def _refuse(reason: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            flag = max(param.opts, key=len)
            raise click.UsageError(f"{flag} is not supported: {reason}", ctx=ctx)

    return check


#: Celery pools conveyor does not have, and what to use instead.
_NO_POOL = {
    "gevent": "conveyor does not monkey-patch the standard library; use -P threads (with a "
    "high -c) for many I/O-bound tasks",
    "eventlet": "conveyor does not monkey-patch the standard library; use -P threads (with a "
    "high -c) for many I/O-bound tasks",
    "processes": "use -P process (prefork)",
}


def check_pool(value: str | None) -> str | None:
    """`-P`: one of POOL_NAMES; Celery's gevent and eventlet refused with the reason."""
    if value is None or value in POOL_NAMES:
        return value
    why = _NO_POOL.get(value, f"use one of {', '.join(sorted(POOL_NAMES))}")
    raise click.BadParameter(f"no {value!r} pool: {why}", param_hint="'-P' / '--pool'")


def check_combinations(
    beat: bool, beat_file: str | None, disable_prefetch: bool, prefetch: int | None
) -> None:
    """UsageError for `-s`/`--scheduler` without `-B` (they configure the embedded
    scheduler), and `--disable-prefetch` beside a `--prefetch-multiplier` above 1."""
    if beat_file and not beat:
        raise click.UsageError(
            "-s/--schedule and --scheduler configure the embedded scheduler: add -B, or drop them"
        )
    if disable_prefetch and (prefetch or 1) > 1:
        raise click.UsageError(
            "--disable-prefetch reserves a message only for a free slot; "
            f"--prefetch-multiplier {prefetch} asks for more: drop one of them"
        )
