"""Read-only views: `conveyor result ID` (and `result show ID`) and `conveyor queues`."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from .._names import did_you_mean
from ..app import Conveyor
from ..errors import TaskRevokedError
from ..message import decode_arguments, decode_value
from ..results.base import Outcome
from .context import CliContext


def when(ts: float | None) -> str:
    """An epoch time as ISO 8601 UTC, or '-'."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def outcome_record(outcome: Outcome, limit: int) -> dict[str, Any]:
    """Everything stored for one call, as plain JSON-ready data. `limit`: the app's
    `result_max_size`, past which a compressed value is not inflated (DecodeError)."""
    value = decode_value(outcome.value, limit) if outcome.value is not None else None
    runtime = None
    if outcome.started_at is not None and outcome.finished_at is not None:
        runtime = round(outcome.finished_at - outcome.started_at, 6)
    record: dict[str, Any] = {
        "task_id": outcome.task_id,
        "state": outcome.state.value,
        "task": outcome.task_name,
        "args": None,
        "kwargs": None,
        "queue": outcome.queue,
        "worker": outcome.worker,
        "attempt": outcome.attempt,
        "retries": outcome.retries,
        "started_at": when(outcome.started_at),
        "finished_at": when(outcome.finished_at),
        "runtime": runtime,
        "result": value,
        "reason": outcome.reason,
        "error": dataclasses.asdict(outcome.error) if outcome.error else None,
    }
    if outcome.arguments is not None:
        arguments = decode_arguments(outcome.arguments)
        record.update(args=list(arguments.args), kwargs=arguments.kwargs)
    return record


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("words", nargs=-1, required=True, metavar="[show] TASK_ID")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show everything stored for the call (`result show`)."
)
@click.option("--json", "as_json", is_flag=True, help="Print everything stored as one JSON object.")
@click.option("--traceback", "show_traceback", is_flag=True, help="Print the traceback instead.")
@click.option(
    "-t",
    "--task",
    "task_name",
    metavar="NAME",
    help="Accepted as Celery's; the name must be registered. conveyor keeps every task's "
    "results in the app's one result store, so it changes nothing else.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Give up after this many seconds (default: wait as long as it takes, as Celery).",
)
@click.pass_obj
def result(
    ctx: CliContext,
    words: tuple[str, ...],
    verbose: bool,
    as_json: bool,
    show_traceback: bool,
    task_name: str | None,
    timeout: float | None,
) -> None:
    """Print the return value of a call, as Celery's `celery result ID`: wait for it to
    finish, then print the value (a failure: its error on stderr, exit 1).

    `result show ID`, `-v` or `--json`: everything stored for the call, at once (args and
    kwargs with result_extended)."""
    show, task_id = _result_words(words)
    app = ctx.app()
    if task_name is not None and task_name not in app.tasks:
        near = did_you_mean(task_name, app.tasks)
        raise click.BadParameter(
            f"no task named {task_name!r} is registered in this app{near}",
            param_hint="'-t' / '--task'",
        )
    if show or verbose or as_json:
        _show_record(app, task_id, as_json)
    elif show_traceback:
        click.echo(app.AsyncResult(task_id).traceback)
    else:
        _print_value(app, task_id, timeout)


def _result_words(words: tuple[str, ...]) -> tuple[bool, str]:
    """(show, task id) from `ID` or `show ID`."""
    if len(words) == 1:
        return False, words[0]
    if len(words) == 2 and words[0] == "show":
        return True, words[1]
    raise click.UsageError("give one task id: `conveyor result ID` or `conveyor result show ID`")


def _print_value(app: Conveyor, task_id: str, timeout: float | None) -> None:
    """Wait for the call, then print its value as Celery prints it (its str()); a failure or
    a revoke prints the error and exits 1."""
    try:
        value = app.AsyncResult(task_id).get(timeout=timeout, propagate=False)
    except TimeoutError as exc:
        raise click.ClickException(f"{exc}; try again later, or give a longer --timeout") from None
    if isinstance(value, TaskRevokedError):
        raise click.ClickException(str(value))
    if isinstance(value, BaseException):
        raise click.ClickException(f"task {task_id} failed: {type(value).__name__}: {value}")
    click.echo("" if value is None else str(value))


def _show_record(app: Conveyor, task_id: str, as_json: bool) -> None:
    """Everything stored for one call, as a table or one JSON object, without waiting."""
    outcome = app.results.get(task_id)
    if outcome is None:
        fields = {"task_id": task_id, "state": "PENDING"}
        click.echo(
            json.dumps(fields)
            if as_json
            else f"{task_id}: PENDING (no outcome stored: unknown, not started, or expired)"
        )
        return
    record = outcome_record(outcome, app.conf.settings.result_max_size)
    if as_json:
        click.echo(json.dumps(record))
        return
    for key, val in record.items():
        if key == "error" and outcome.error is not None:
            click.echo(f"{'error':>12}: {outcome.error.type}: {outcome.error.message}")
            if outcome.error.traceback:
                click.echo(outcome.error.traceback.rstrip())
        elif key == "args" and outcome.arguments is None:
            click.echo(f"{'args':>12}: not stored (set result_extended=True to keep them)")
        elif key == "runtime" and val is not None:
            click.echo(f"{key:>12}: {val:.3f} s")
        elif val is not None:
            click.echo(f"{key:>12}: {json.dumps(val) if key in JSON_FIELDS else val}")


JSON_FIELDS = frozenset({"result", "args", "kwargs"})


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
