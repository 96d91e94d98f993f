"""`conveyor dlq list|show|redrive|purge` — the dead letters.

A message is dead-lettered when it cannot be decoded or names an unknown task, when its run
was lost `max_deliveries` times, when the task raised `Reject(requeue=False)`, or when it
failed and the task (or `task_dead_letter_on_failure`) asks for it. Dead letters are kept
until redriven or purged, or for `dead_letter_retention` seconds.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..brokers.base import Broker, MessageState, StoredMessage
from ..errors import DecodeError
from ..message import decode_message
from .context import CliContext
from .inspect_cmds import when as _when


def _queues(broker: Broker, queues: str | None) -> list[str]:
    if queues:
        return [q.strip() for q in queues.split(",") if q.strip()]
    return [s.queue for s in broker.queue_stats() if s.dead]


def _dead(broker: Broker, queues: str | None) -> list[StoredMessage]:
    found: list[StoredMessage] = []
    for queue in _queues(broker, queues):
        offset = 0
        while page := broker.list_messages(queue, MessageState.DEAD, 500, offset):
            found += page
            offset += len(page)
    return found


def _task_name(body: bytes) -> str:
    try:
        return decode_message(body).task
    except DecodeError:
        return "(undecodable)"


def _record(m: StoredMessage) -> dict[str, object]:
    return {
        "id": m.envelope.id,
        "queue": m.envelope.queue,
        "task": _task_name(m.envelope.body),
        "attempts": m.attempts,
        "reason": m.reason,
        "last_error": m.last_error,
        "dead_at": _when(m.updated_at),
    }


@click.group()
def dlq() -> None:
    """Dead letters: list, show, redrive, purge."""


@dlq.command("list")
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Only these queues.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def list_(ctx: CliContext, queues: str | None, as_json: bool) -> None:
    """List dead letters, with why each died."""
    records = [_record(m) for m in _dead(ctx.app().broker, queues)]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no dead letters")
        return
    table = Table("id", "queue", "task", "attempts", "dead at", "reason")
    for r in records:
        table.add_row(
            *(escape(str(r[k])) for k in ("id", "queue", "task", "attempts")),
            str(r["dead_at"]),
            escape(str(r["reason"])),
        )
    Console().print(table)


@dlq.command()
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def show(ctx: CliContext, message_id: str, as_json: bool) -> None:
    """Show one dead letter: reason, attempts, last error, when, and its call."""
    found = ctx.app().broker.get_message(message_id)
    if found is None or found.state is not MessageState.DEAD:
        raise click.ClickException(f"{message_id} is not a dead letter")
    record = _record(found)
    try:
        m = decode_message(found.envelope.body)
        record["args"], record["kwargs"], record["retries"] = list(m.args), m.kwargs, m.retries
    except DecodeError as exc:
        record["body_error"] = str(exc)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    for key, value in record.items():
        click.echo(f"{key:>10}: {value}")


@dlq.command()
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter.")
@click.option("-Q", "--queues", metavar="Q1,Q2", help="With --all: only these queues.")
@click.pass_obj
def redrive(
    ctx: CliContext, message_ids: tuple[str, ...], everything: bool, queues: str | None
) -> None:
    """Put dead letters back in their queues, with a fresh count of lost runs."""
    if bool(message_ids) == everything:
        raise click.UsageError("give message ids or --all (with -Q to pick queues), not both")
    broker = ctx.app().broker
    ids = list(message_ids) or [m.envelope.id for m in _dead(broker, queues)]
    moved = broker.redrive(ids)
    click.echo(f"redrove {moved} message(s)")
    if message_ids and moved < len(ids):
        raise click.ClickException(f"{len(ids) - moved} id(s) were not dead letters")


@dlq.command()
@click.option("-Q", "--queues", metavar="Q1,Q2", help="Only these queues.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(ctx: CliContext, queues: str | None, force: bool) -> None:
    """Delete dead letters for good."""
    broker = ctx.app().broker
    count = len(_dead(broker, queues))
    if count == 0:
        click.echo("no dead letters")
        return
    if not force:
        click.confirm(f"Delete {count} dead letter(s)?", abort=True)
    names = _queues(broker, queues) if queues else None
    click.echo(f"purged {broker.purge_dead(names)} dead letter(s)")
