"""Read-only views: `conveyor result ID` and `conveyor queues`."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import click
from rich.console import Console
from rich.table import Table

from ..message import decode_value
from .context import CliContext


def when(ts: float | None) -> str:
    """An epoch time as ISO 8601 UTC, or '-'."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


@click.command()
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def result(ctx: CliContext, task_id: str, as_json: bool) -> None:
    """Show the stored outcome of one call."""
    outcome = ctx.app().results.get(task_id)
    if outcome is None:
        fields = {"task_id": task_id, "state": "PENDING"}
        click.echo(
            json.dumps(fields)
            if as_json
            else f"{task_id}: PENDING (no outcome stored: unknown, not started, or expired)"
        )
        return
    value = decode_value(outcome.value) if outcome.value is not None else None
    record = {
        "task_id": outcome.task_id,
        "state": outcome.state.value,
        "task": outcome.task_name,
        "queue": outcome.queue,
        "worker": outcome.worker,
        "attempt": outcome.attempt,
        "retries": outcome.retries,
        "started_at": when(outcome.started_at),
        "finished_at": when(outcome.finished_at),
        "result": value,
        "reason": outcome.reason,
        "error": dataclasses.asdict(outcome.error) if outcome.error else None,
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    for key, val in record.items():
        if key == "error" and outcome.error is not None:
            click.echo(f"{'error':>12}: {outcome.error.type}: {outcome.error.message}")
            if outcome.error.traceback:
                click.echo(outcome.error.traceback.rstrip())
        elif val is not None:
            click.echo(f"{key:>12}: {json.dumps(val) if key == 'result' else val}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.pass_obj
def queues(ctx: CliContext, as_json: bool) -> None:
    """Ready, scheduled, leased and dead counts per queue."""
    stats = ctx.app().broker.queue_stats()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(s) for s in stats]))
        return
    table = Table(title="queues")
    for col in ("queue", "ready", "scheduled", "leased", "dead"):
        table.add_column(col, justify="left" if col == "queue" else "right")
    for s in stats:
        table.add_row(s.queue, str(s.ready), str(s.scheduled), str(s.leased), str(s.dead))
    if not stats:
        table.caption = "no messages in any queue"
    Console().print(table)
