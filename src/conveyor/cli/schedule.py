"""`conveyor -A proj schedule list|add|pause|resume|remove`: the schedule at run time.

Changes take effect without restarting anything: schedulers re-read the store at every tick
(at most `beat_max_loop_interval` apart).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import click

from ..scheduler.book import EntryView, Schedules
from ..scheduler.schedule import (
    Interval,
    Missed,
    Schedule,
    cron_from_line,
    parse_beat_schedule,
)
from .columns import aligned
from .context import CliContext

_COLUMNS = ("name", "task", "schedule", "next fire", "last fire", "queue", "fires/day", "load")


@click.group()
def schedule() -> None:
    """List and change the periodic tasks, without restarting anything."""


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def list_entries(ctx: CliContext, as_json: bool) -> None:
    """Every entry: schedule in words, next and last fire, queue, fires per day and load
    (average run time × fires per day, from the outcomes of its recent fires)."""
    book = _book(ctx)
    views = book.list()
    if as_json:
        click.echo(json.dumps([_as_dict(v) for v in views], indent=2))
        return
    lease = book.leadership()
    rows = [_cells(v) for v in views]
    click.echo("\n".join(aligned(_COLUMNS, rows, indent="")))
    total = sum(v.fires_per_day for v in views if not v.stored.paused)
    leader = f"leader {lease.holder} ({lease.remaining:.1f} s left on its lease)"
    click.echo(
        f"\n{len(views)} entries, {total:,.0f} fires/day; "
        f"{leader if lease.holder else 'no scheduler is leading'}"
    )
    for v in views:
        if v.expired:
            click.echo(
                f"{v.entry.name}: {v.expired} of its recent fires expired before a worker "
                "started them (its queue is too slow for this interval)"
            )
    pending = unsynced(book, views)
    if pending:
        click.echo(
            f"beat_schedule differs from the stored schedule for {', '.join(pending)}: it is "
            "stored when a scheduler starts (conveyor beat, or a worker with -B)"
        )


def unsynced(book: Schedules, views: list[EntryView]) -> list[str]:
    """Names of beat_schedule entries missing from the store or stored differently."""
    stored = {v.entry.name: v.entry.to_json() for v in views}
    configured = parse_beat_schedule(book.app.conf.settings.beat_schedule)
    return [e.name for e in configured if stored.get(e.name) != e.to_json()]


@schedule.command()
@click.argument("name")
@click.argument("task")
@click.option("--every", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS")
@click.option("--cron", metavar="'M H DOM MON DOW'", help="A cron line, e.g. '*/15 8-18 * * 1-5'.")
@click.option("--args", "args_json", default="[]", help="Positional arguments as a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--queue", help="Send to this queue (default: the task's route).")
@click.option(
    "--priority", type=click.IntRange(0, 255), help="0–9, or 0 to task_queue_max_priority."
)
@click.option("--expires", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS")
@click.option("--missed", type=click.Choice([m.value for m in Missed]), default=Missed.SKIP.value)
@click.option(
    "--allow-subsecond",
    is_flag=True,
    help="Accept an --every below one second.",
)
@click.pass_obj
def add(
    ctx: CliContext,
    name: str,
    task: str,
    every: float | None,
    cron: str | None,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    priority: int | None,
    expires: float | None,
    missed: str,
    allow_subsecond: bool,
) -> None:
    """Add entry NAME sending TASK (or change the run-time entry NAME)."""
    if (every is None) == (cron is None):
        raise click.UsageError("give the schedule as --every SECONDS or --cron 'M H DOM MON DOW'")
    when: Schedule = Interval(every) if every is not None else cron_from_line(str(cron))
    entry = _book(ctx).add(
        name,
        task,
        when,
        args=_json(args_json, "--args", list),
        kwargs=_json(kwargs_json, "--kwargs", dict),
        queue=queue,
        priority=priority,
        expires=expires,
        missed=missed,
        allow_subsecond=allow_subsecond,
    )
    click.echo(
        f"{name}: {entry.task} {entry.describe()} ({entry.schedule.fires_per_day():,.1f}/day)"
    )


@schedule.command()
@click.argument("name")
@click.pass_obj
def pause(ctx: CliContext, name: str) -> None:
    """Stop firing entry NAME until it is resumed (its fires meanwhile are not sent)."""
    _book(ctx).pause(name)
    click.echo(f"{name}: paused")


@schedule.command()
@click.argument("name")
@click.pass_obj
def resume(ctx: CliContext, name: str) -> None:
    """Fire entry NAME again from its next scheduled time."""
    _book(ctx).resume(name)
    click.echo(f"{name}: resumed")


@schedule.command()
@click.argument("name")
@click.pass_obj
def remove(ctx: CliContext, name: str) -> None:
    """Delete run-time entry NAME (entries of beat_schedule are removed in the settings)."""
    _book(ctx).remove(name)
    click.echo(f"{name}: removed")


def _book(ctx: CliContext) -> Schedules:
    app = ctx.app(required=True)
    app.import_modules()
    return app.schedules


def _json(text: str, flag: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=flag) from None
    if not isinstance(value, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=flag)
    return value


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _epoch(at: float | None) -> str:
    return "-" if at is None else _when(datetime.fromtimestamp(at, timezone.utc))


def _cells(v: EntryView) -> tuple[str, ...]:
    nxt = "paused" if v.stored.paused else _when(v.next_fire) + (" (due)" if v.due else "")
    load = v.worker_seconds_per_day
    return (
        v.entry.name,
        v.entry.task,
        v.entry.describe() + ("" if v.entry.missed is Missed.SKIP else ", catch up"),
        nxt,
        _epoch(v.stored.last_fire),
        v.entry.queue or "(routed)",
        f"{v.fires_per_day:,.1f}".removesuffix(".0"),
        "-" if load is None else f"{load:,.0f} worker-s/day",
    )


def _as_dict(v: EntryView) -> dict[str, Any]:
    return {
        "name": v.entry.name,
        "task": v.entry.task,
        "schedule": v.entry.describe(),
        "definition": json.loads(v.entry.to_json()),
        "source": v.stored.source.value,
        "paused": v.stored.paused,
        "next_fire": None if v.next_fire is None else v.next_fire.timestamp(),
        "last_fire": v.stored.last_fire,
        "queue": v.entry.queue,
        "fires_per_day": v.fires_per_day,
        "fires": v.stored.fires,
        "skipped": v.stored.skipped,
        "avg_run_seconds": v.avg_run,
        "recent_fires_expired": v.expired,
        "worker_seconds_per_day": v.worker_seconds_per_day,
    }
