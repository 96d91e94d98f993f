"""Celery worker options that have no conveyor counterpart: each is refused when given, with
the reason and what to do instead, so that a Procfile or unit file line copied from a Celery
deployment fails at once with a clear message instead of being silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

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
