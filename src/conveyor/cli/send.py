"""`conveyor -A proj call TASK ...` — send one call from the shell."""

from __future__ import annotations

import json
from typing import Any

import click

from ..errors import RemoteError
from ..states import TaskState
from .context import CliContext


def _json(value: str, what: str, kind: type) -> Any:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(f"must be a JSON {kind.__name__}", param_hint=what)
    return parsed


@click.command()
@click.argument("task")
@click.option(
    "--args", "args_json", default="[]", help="Positional arguments, a JSON list: '[1, \"a\"]'."
)
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments, a JSON object.")
@click.option("--countdown", type=float, help="Run no earlier than this many seconds from now.")
@click.option(
    "--expires", type=float, help="Drop the call if not started within this many seconds."
)
@click.option("--queue", help="Queue to send to (default: the task's or task_default_queue).")
@click.option(
    "--priority",
    type=click.IntRange(0, 255),
    help="0–9, higher runs first (or 0 to task_queue_max_priority, mapped onto 0–9).",
)
@click.option("--wait", is_flag=True, help="Wait for the outcome and print it.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="With --wait.")
@click.pass_obj
def call(
    ctx: CliContext,
    task: str,
    args_json: str,
    kwargs_json: str,
    countdown: float | None,
    expires: float | None,
    queue: str | None,
    priority: int | None,
    wait: bool,
    timeout: float,
) -> None:
    """Send a call of TASK and print its id (and, with --wait, its result)."""
    app = ctx.app()
    res = app.send_task(
        task,
        _json(args_json, "--args", list),
        _json(kwargs_json, "--kwargs", dict),
        countdown=countdown,
        expires=expires,
        queue=queue,
        priority=priority,
    )
    click.echo(res.id)
    if not wait:
        return
    try:
        value = res.get(timeout=timeout)
    except RemoteError as exc:
        click.echo(f"{TaskState.FAILURE.value}: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    except Exception as exc:
        click.echo(f"{res.state}: {type(exc).__name__}: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    click.echo(json.dumps(value))
