"""`conveyor results` — stored outcomes, newest first, a page at a time.

History is whatever the result store still holds: outcomes live `result_expires` seconds
(default one day) after their last write. A page ends with the command that prints the next
one (a cursor, so paging stays exact while workers keep writing).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

import click

from ..message import decode_value
from ..results.base import Cursor, HistoryEntry, HistoryPage, HistoryQuery
from ..states import TaskState
from .columns import aligned
from .context import CliContext
from .inspect_cmds import outcome_record

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SHOWN = 60  # characters of a result or error shown in the table


def parse_since(text: str) -> float:
    """`--since`: a span back from now (`90s`, `15m`, `1h`, `2d`, `1w`) or an ISO 8601 time
    (naive times are UTC), as epoch seconds."""
    span = _SPAN.match(text)
    if span:
        return time.time() - float(span.group(1)) * _UNIT[span.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give a span like 30m, 1h, 2d or a time like 2026-11-21T08:00",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _cursor(text: str) -> Cursor:
    try:
        return Cursor.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--before") from None


@click.command()
@click.option(
    "--state",
    type=click.Choice(
        [s.value for s in TaskState if s is not TaskState.PENDING], case_sensitive=False
    ),
    help="Only outcomes in this state.",
)
@click.option("--task", "task_name", metavar="NAME", help="Only calls of this task.")
@click.option("--since", metavar="SPAN|TIME", help="Only written since: 1h, 2d, or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--before", metavar="CURSOR", help="The page after the one that printed CURSOR.")
@click.option("--json", "as_json", is_flag=True, help="Print {results: […], next: cursor}.")
@click.pass_obj
def results(
    ctx: CliContext,
    state: str | None,
    task_name: str | None,
    since: str | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """Stored outcomes, newest first, one page at a time."""
    query = HistoryQuery(
        state=TaskState(state.upper()) if state else None,
        task_name=task_name,
        since=parse_since(since) if since else None,
        before=_cursor(before) if before else None,
        limit=limit,
    )
    app = ctx.app()
    page = app.results.history(query)
    limit = app.conf.settings.result_max_size
    if as_json:
        listed = [
            {"stored_at": e.stored_at, **outcome_record(e.outcome, limit)} for e in page.entries
        ]
        click.echo(json.dumps({"results": listed, "next": page.next and str(page.next)}))
        return
    _print_page(page, before is not None, limit)


def _print_page(page: HistoryPage, continued: bool, limit: int) -> None:
    if not page.entries:
        click.echo("no more outcomes" if continued else "no stored outcomes match")
        return
    header = ("stored (UTC)", "state", "task", "id", "worker", "attempt", "runtime", "result")
    for line in aligned(header, [_row(e, limit) for e in page.entries], indent=""):
        click.echo(line)
    if page.next is not None:
        click.echo(f"\nmore: add --before {page.next}")


def _row(entry: HistoryEntry, limit: int) -> tuple[str, ...]:
    o = entry.outcome
    stored = datetime.fromtimestamp(entry.stored_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    runtime = "-"
    if o.started_at is not None and o.finished_at is not None:
        runtime = f"{o.finished_at - o.started_at:.3f}s"
    return (
        stored,
        o.state.value,
        o.task_name or "-",
        o.task_id,
        o.worker or "-",
        str(o.attempt),
        runtime,
        _summary(entry, limit),
    )


def _summary(entry: HistoryEntry, limit: int) -> str:
    o = entry.outcome
    if o.error is not None:
        text = f"{o.error.type}: {o.error.message}"
    elif o.value is not None:
        text = json.dumps(decode_value(o.value, limit))
    else:
        text = o.reason or ""
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"
