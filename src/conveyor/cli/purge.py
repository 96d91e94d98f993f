"""`conveyor purge` — delete waiting messages, after asking."""

from __future__ import annotations

import click

from .context import CliContext


@click.command()
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Queues to purge (default: every queue).")
@click.option("--dead", "include_dead", is_flag=True, help="Delete dead letters too.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(ctx: CliContext, queues: str | None, include_dead: bool, force: bool) -> None:
    """Delete ready and scheduled messages. Messages being run are left to their workers."""
    broker = ctx.app().broker
    stats = {s.queue: s for s in broker.queue_stats()}
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else sorted(stats)
    doomed = sum(
        stats[q].ready + stats[q].scheduled + (stats[q].dead if include_dead else 0)
        for q in names
        if q in stats
    )
    if doomed == 0:
        click.echo("nothing to purge")
        return
    if not force:
        click.confirm(f"Delete {doomed} message(s) from {', '.join(names)}?", abort=True)
    deleted = broker.purge(names, include_dead=include_dead)
    click.echo(f"purged {deleted} message(s) from {len(names)} queue(s)")
