"""`conveyor control revoke ID… [--terminate]`."""

from __future__ import annotations

import click

from ..brokers.base import RevokeOutcome
from .context import CliContext

_SAID = {
    RevokeOutcome.REMOVED: "revoked: it was waiting and will never run",
    RevokeOutcome.FLAGGED: "revoked: a worker holds it; it will not start",
    RevokeOutcome.UNKNOWN: "revoked: not waiting now; it will not run if sent later",
}


@click.group()
def control() -> None:
    """Act on calls already sent."""


@control.command()
@click.argument("task_ids", nargs=-1, required=True)
@click.option(
    "--terminate", is_flag=True, help="Also kill the call if it is running (process pool)."
)
@click.pass_obj
def revoke(ctx: CliContext, task_ids: tuple[str, ...], terminate: bool) -> None:
    """Revoke calls by id, durably: no worker starts them later, including after restarts."""
    for rev in ctx.app().control.revoke(list(task_ids), terminate=terminate):
        said = _SAID[rev.outcome]
        if rev.outcome is RevokeOutcome.FLAGGED and terminate:
            said = "revoked: a worker holds it; it will be killed if running"
        click.echo(f"{rev.message_id}: {said}")
