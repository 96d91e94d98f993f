"""`conveyor -A proj worker ...` — Celery's worker command line, so a Procfile line with
`celery` replaced by `conveyor` keeps working."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..config import POOL_NAMES, lease_seconds
from ..worker.naming import expand_node_name
from ..worker.worker import Worker, WorkerOptions
from .context import CliContext, setup_logging


def _not_built(flag: str, feature: str) -> click.UsageError:
    return click.UsageError(f"{flag} is not supported yet ({feature} is not built)")


@click.command()
@click.option(
    "-Q",
    "--queues",
    "queues",
    multiple=True,
    metavar="Q1,Q2",
    help="Queues to consume, comma-separated (default: task_default_queue).",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Slots: processes or threads (default: worker_concurrency or CPU count).",
)
@click.option(
    "-P", "--pool", type=click.Choice(sorted(POOL_NAMES)), help="process (default), threads, solo."
)
@click.option("-n", "--hostname", "node", metavar="NAME@%h", help="Node name; %h %n %d expand.")
@click.option(
    "--max-tasks-per-child",
    type=click.IntRange(min=1),
    help="Replace a process-pool child after this many tasks.",
)
@click.option(
    "--max-memory-per-child",
    type=click.IntRange(min=1),
    metavar="KIB",
    help="Replace a process-pool child, after its task, once its peak memory passes this.",
)
@click.option(
    "--prefetch-multiplier",
    type=click.IntRange(min=1),
    help="Reserve up to free slots × N messages (default 1: one per free slot).",
)
@click.option("-l", "--loglevel", default="warning", show_default=True)
@click.option("-f", "--logfile", type=click.Path(dir_okay=False), help="Log to this file.")
@click.option("--pidfile", type=click.Path(dir_okay=False), help="Write the worker's pid here.")
@click.option(
    "--without-gossip",
    is_flag=True,
    help="Accepted for Celery compatibility; conveyor has no gossip.",
)
@click.option(
    "--without-mingle",
    is_flag=True,
    help="Accepted for Celery compatibility; conveyor has no mingle.",
)
@click.option("-B", "--beat", is_flag=True, help="Run the scheduler too (not built yet).")
@click.option("--autoscale", metavar="MAX,MIN", help="Autoscale the pool (not built yet).")
@click.option("-E", "--task-events", is_flag=True, help="Send task events (not built yet).")
@click.pass_obj
def worker(
    ctx: CliContext,
    queues: tuple[str, ...],
    concurrency: int | None,
    pool: str | None,
    node: str | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    prefetch_multiplier: int | None,
    loglevel: str,
    logfile: str | None,
    pidfile: str | None,
    without_gossip: bool,
    without_mingle: bool,
    beat: bool,
    autoscale: str | None,
    task_events: bool,
) -> None:
    """Start a worker that consumes queues and runs their tasks."""
    if beat:
        raise _not_built("-B/--beat", "the scheduler")
    if autoscale:
        raise _not_built("--autoscale", "the autoscaler")
    if task_events:
        raise _not_built("-E/--task-events", "task events")
    if len(queues) > 1:
        raise click.UsageError(
            "several -Q options (one slot group each) are not supported yet; list all queues "
            "in one -Q, comma-separated: -Q high,default,low"
        )
    setup_logging(loglevel, logfile)
    app = ctx.app(required=True)
    s = app.conf.settings
    names = tuple(q.strip() for q in queues[0].split(",") if q.strip()) if queues else ()
    chosen_pool = POOL_NAMES[pool] if pool else s.worker_pool
    options = WorkerOptions(
        queues=names or (s.task_default_queue,),
        name=expand_node_name(node),
        concurrency=1
        if chosen_pool == "solo"
        else (concurrency or s.worker_concurrency or os.cpu_count() or 1),
        pool=chosen_pool,
        prefetch_multiplier=prefetch_multiplier or s.worker_prefetch_multiplier,
        max_tasks_per_child=max_tasks_per_child
        or (s.worker_max_tasks_per_child if chosen_pool == "process" else None),
        max_memory_per_child=max_memory_per_child
        or (s.worker_max_memory_per_child if chosen_pool == "process" else None),
        app_path=ctx.app_spec,
        lease_for=lease_seconds(s),
        shutdown_timeout=s.worker_shutdown_timeout,
    )
    click.echo(
        f"conveyor worker {options.name}: queues {','.join(options.queues)}, "
        f"{options.pool} pool × {options.concurrency}, broker {_safe(app.urls[0])}",
        err=True,
    )
    consumer = Worker(app, options)  # opens the broker: fails here, before any pidfile
    if pidfile:
        Path(pidfile).write_text(f"{os.getpid()}\n")
    try:
        consumer.run()
    finally:
        if pidfile:
            Path(pidfile).unlink(missing_ok=True)


def _safe(url: str) -> str:
    """A URL without credentials, for display."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
