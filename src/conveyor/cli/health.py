"""`conveyor health FILE` — exit 0 when the worker that writes FILE (`worker --health-file`)
is consuming, 1 when it is not (server unreachable, shutting down) or its report is stale."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..worker.health import read


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--max-age",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds after which a report counts as stale (the worker is hung or gone).",
)
def health(path: Path, max_age: float) -> None:
    """Report whether a worker is consuming, for liveness and readiness probes."""
    try:
        report = read(path)
    except (OSError, ValueError, KeyError) as exc:
        click.echo(f"no health report at {path}: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    age = time.time() - report.at
    if age > max_age:
        click.echo(f"{report.worker}: report is {age:.0f}s old (stale; worker hung or gone)")
        raise click.exceptions.Exit(1)
    line = f"{report.worker}: {report.state}"
    click.echo(f"{line} ({report.detail})" if report.detail else line)
    if not report.consuming:
        raise click.exceptions.Exit(1)
