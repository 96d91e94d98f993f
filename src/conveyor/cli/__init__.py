"""The `conveyor` command. Each sub-command lives in its own module here.

Celery's command line carries over: `conveyor -A proj worker -Q high,default -c 3 -l info`.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from .beat import beat
from .context import CliContext, run_cli
from .control import control
from .db import db
from .demo import demo
from .dlq import dlq
from .events import events
from .health import health
from .history import results
from .inspect_cmds import queues, result
from .metrics import metrics
from .multi import multi
from .purge import purge
from .routes import routes
from .schedule import schedule
from .send import call
from .worker import worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-A",
    "--app",
    "app_spec",
    metavar="MODULE[:ATTR]",
    envvar="CONVEYOR_APP",
    help="Where the app lives: proj finds proj.app, proj.celery or the only app in proj.",
)
@click.option("-b", "--broker", metavar="URL", help="Broker URL (overrides the app's).")
@click.version_option(__version__, prog_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None, broker: str | None) -> None:
    """conveyor: a task queue with Celery's API, run with zero setup on SQLite."""
    ctx.obj = CliContext(app_spec, broker)


for command in (
    worker,
    beat,
    schedule,
    call,
    result,
    results,
    queues,
    routes,
    purge,
    control,
    dlq,
    demo,
    db,
    health,
    events,
    metrics,
    multi,
):
    cli.add_command(command)


def main() -> None:
    sys.exit(run_cli(cli))
