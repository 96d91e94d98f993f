"""`conveyor -A proj worker ...` — Celery's worker command line, so a Procfile line with
`celery` replaced by `conveyor` keeps working."""

from __future__ import annotations

import functools
import importlib
import logging
import os
from pathlib import Path

import click

from .. import signals
from .._names import did_you_mean
from .._sqlite import sqlite_locations
from .._urls import safe_url
from ..app import Conveyor
from ..config import POOL_NAMES, Settings, lease_seconds
from ..logformat import banner
from ..routing import default_consumed
from ..scheduler.beat import Beat, run_in_thread
from ..scheduler.foreign import ignored_notice
from ..worker.child import ENV_INCLUDE
from ..worker.naming import expand_node_name, node_format
from ..worker.slotspec import QueueOrder, SlotSpec, parse_slot_spec
from ..worker.worker import Worker, WorkerOptions
from .beat import beat_options
from .celery_options import check_combinations, check_pool, refused_options
from .context import CliContext, log_format_option, setup_logging
from .detach import detach as run_detached
from .files import Pidfile, exit_on_sigterm, logfile_option, pidfile_option, writable_directory

log = logging.getLogger("conveyor.worker")


def _not_built(flag: str, feature: str) -> click.UsageError:
    return click.UsageError(f"{flag} is not supported yet ({feature} is not built)")


@click.command()
@click.option(
    "-Q",
    "--queues",
    "queues",
    multiple=True,
    metavar="Q1,Q2[:N[:POOL]]",
    help="Queues of one slot group, drained in this order (default: every queue of "
    "task_queues, else task_default_queue). "
    "Repeat for more groups, each with its own slots: -Q high,default:3 -Q low:1.",
)
@click.option(
    "-c",
    "--concurrency",
    multiple=True,
    type=click.IntRange(min=1),
    help="Slots of the group (default: worker_concurrency or CPU count). With several -Q, "
    "give one -c after each -Q, or N in each -Q.",
)
@click.option(
    "--queue-order",
    type=click.Choice([o.value for o in QueueOrder]),
    help="strict (default): drain each group's queues in the order listed; weighted: "
    "round-robin by weights (-Q high=3,default=1:4).",
)
@click.option(
    "-P",
    "--pool",
    metavar="|".join(sorted(POOL_NAMES)),
    callback=lambda ctx, param, value: check_pool(value),
    help="process (default), threads, solo.",
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
@click.option(
    "--disable-prefetch",
    is_flag=True,
    help="Reserve a message only for a free slot (the default; refused with "
    "--prefetch-multiplier above 1).",
)
@click.option(
    "--purge",
    "--discard",
    "purge_first",
    is_flag=True,
    help="Delete the waiting messages of the consumed queues before consuming (as Celery's).",
)
@click.option(
    "-I",
    "--include",
    "include",
    multiple=True,
    metavar="MOD1,MOD2",
    help="Also import these modules (their tasks register) before consuming.",
)
@click.option(
    "-S",
    "--statedb",
    metavar="FILE",
    help="Accepted for Celery compatibility and not used: revoked ids are kept in the broker, "
    "so they survive restarts without a state file.",
)
@click.option(
    "-O",
    "--optimization",
    type=click.Choice(("default", "fair")),
    default="default",
    help="Accepted as Celery's: conveyor always behaves as `fair` (a slot gets a task only "
    "once it is free), so both profiles schedule the same way.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Hard time limit in seconds for tasks without one of their own (sets "
    "task_time_limit for this worker).",
)
@click.option(
    "--soft-time-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Soft time limit in seconds (SoftTimeLimitExceeded) for tasks without one of their "
    "own (sets task_soft_time_limit for this worker).",
)
@click.option("-l", "--loglevel", default="warning", show_default=True)
@log_format_option()
@logfile_option()
@pidfile_option("worker")
@click.option(
    "-D",
    "--detach",
    is_flag=True,
    help="Start the worker in the background (a new session; output to --logfile, else "
    "discarded) and return once it has started.",
)
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
@click.option(
    "--without-heartbeat",
    is_flag=True,
    help="Publish no worker-heartbeat events (the worker's record in the broker is still "
    "refreshed: that is how the cluster metrics tell a live worker from a lost one).",
)
@click.option(
    "--health-file",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=writable_directory,
    help="Rewrite this file (0600) every second with whether the worker is consuming "
    "(read it with `conveyor health`).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (default: "
    "worker_metrics_port; off when unset).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="The address --metrics-port binds (0.0.0.0: every interface).",
)
@click.option(
    "--cluster-metrics",
    is_flag=True,
    help="Also serve the cluster's metrics (queues, workers, schedule) at --metrics-port, "
    "as `conveyor metrics` does.",
)
@click.option(
    "-B",
    "--beat",
    is_flag=True,
    help="Also run a scheduler in this process. Safe on every worker: schedulers elect one "
    "leader, and a fire is never sent twice.",
)
@click.option(
    "-s",
    "--schedule-filename",
    "--schedule",
    "schedule_file",
    metavar="FILE",
    help="With -B, accepted for Celery compatibility and not used: the schedule and its "
    "progress live in the result backend's database.",
)
@click.option(
    "--scheduler",
    "scheduler_class",
    metavar="CLASS",
    help="With -B, accepted for Celery compatibility and not used: conveyor's scheduler is "
    "always database-backed.",
)
@click.option("--autoscale", metavar="MAX,MIN", help="Autoscale the pool (not built yet).")
@click.option(
    "-E",
    "--task-events",
    is_flag=True,
    help="Also publish task events to the event stream (`conveyor events`; default: "
    "worker_send_task_events). Worker events are always published.",
)
@refused_options()
@click.pass_obj
def worker(
    ctx: CliContext,
    queues: tuple[str, ...],
    concurrency: tuple[int, ...],
    queue_order: str | None,
    pool: str | None,
    node: str | None,
    max_tasks_per_child: int | None,
    max_memory_per_child: int | None,
    prefetch_multiplier: int | None,
    disable_prefetch: bool,
    purge_first: bool,
    include: tuple[str, ...],
    statedb: str | None,
    optimization: str,
    time_limit: float | None,
    soft_time_limit: float | None,
    loglevel: str,
    log_format: str | None,
    logfile: str | None,
    pidfile: Path | None,
    detach: bool,
    without_gossip: bool,
    without_mingle: bool,
    without_heartbeat: bool,
    health_file: Path | None,
    metrics_port: int | None,
    metrics_host: str,
    cluster_metrics: bool,
    beat: bool,
    schedule_file: str | None,
    scheduler_class: str | None,
    autoscale: str | None,
    task_events: bool,
) -> None:
    """Start a worker that consumes queues and runs their tasks."""
    if autoscale:
        raise _not_built("--autoscale", "the autoscaler")
    beat_file = schedule_file or scheduler_class
    check_combinations(beat, beat_file, disable_prefetch, prefetch_multiplier)
    app = ctx.app(required=True)  # first: its module may connect the setup_logging signal
    name = expand_node_name(node)
    pidfile = Path(node_format(str(pidfile), name)) if pidfile else None
    logfile = node_format(logfile, name) if logfile else None
    if detach:
        run_detached("worker", pidfile, logfile)  # exits this process
    _apply_time_limits(app, time_limit, soft_time_limit)
    fmt = log_format or app.conf.settings.worker_log_format
    setup_logging(loglevel, logfile, fmt)
    import_included(include)
    warn_if_root()
    s = app.conf.settings
    chosen_pool = POOL_NAMES[pool] if pool else s.worker_pool
    order = QueueOrder(queue_order or s.worker_queue_order)
    groups = slot_groups(queues, concurrency, chosen_pool, order, s)
    options = WorkerOptions(
        queues=(),
        groups=groups,
        name=name,
        prefetch_multiplier=1
        if disable_prefetch
        else (prefetch_multiplier or s.worker_prefetch_multiplier),
        max_tasks_per_child=max_tasks_per_child
        or _if_process(groups, s.worker_max_tasks_per_child),
        max_memory_per_child=max_memory_per_child
        or _if_process(groups, s.worker_max_memory_per_child),
        app_path=ctx.app_spec,
        lease_for=lease_seconds(s),
        shutdown_timeout=s.worker_shutdown_timeout,
        health_file=health_file,
        metrics_port=metrics_port or s.worker_metrics_port,
        metrics_host=metrics_host,
        task_events=task_events or s.worker_send_task_events,
        cluster_metrics=cluster_metrics,
        heartbeat_events=not without_heartbeat,
    )
    first = (
        f"conveyor worker {options.name}: slot groups "
        f"{' '.join(g.describe() for g in groups)}, broker {safe_url(app.urls[0])}"
    )
    for line in (first, *sqlite_locations(*app.urls)):  # where ./conveyor.db really is
        click.echo(banner(line, log.name, fmt), err=True)
    notice = ignored_notice(beat_file, safe_url(app.urls[1])) if beat_file else None
    if notice is not None:  # a django_celery_beat scheduler is warned about, as beat does
        log.log(*notice)
    if statedb:
        log.info("--statedb ignored: revoked ids are kept in %s", safe_url(app.urls[0]))
    exit_on_sigterm()
    pidlock = Pidfile.acquire(pidfile) if pidfile else None  # before anything is opened
    try:
        _run(app, options, beat, purge_first)
    finally:
        if pidlock is not None:
            pidlock.release()


def _apply_time_limits(app: Conveyor, hard: float | None, soft: float | None) -> None:
    """`--time-limit` / `--soft-time-limit`: this worker's task_time_limit and
    task_soft_time_limit, as in Celery (a task's own limits, and a call's, still win)."""
    limits = {"task_time_limit": hard, "task_soft_time_limit": soft}
    app.conf.update({k: v for k, v in limits.items() if v is not None})


def import_included(include: tuple[str, ...]) -> None:
    """`-I/--include`: import each named module (comma-separated, repeatable) so its tasks
    register, here and in process-pool children (ENV_INCLUDE); a module that fails to import
    stops the worker with its error."""
    modules = [m.strip() for spec in include for m in spec.split(",") if m.strip()]
    os.environ[ENV_INCLUDE] = ",".join(modules)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise click.BadParameter(
                f"cannot import {module!r}: {exc}", param_hint="'-I' / '--include'"
            ) from exc


def _run(app: Conveyor, options: WorkerOptions, beat: bool, purge_first: bool) -> None:
    """Open the broker, start the scheduler if asked, and consume until stopped. Sends the
    worker_init signal before the worker starts and worker_shutdown once it has stopped."""
    consumer = Worker(app, options)  # checks routes and opens the broker
    warn_unused_queues(app, options.all_queues)
    if purge_first:
        deleted = app.broker.purge(list(options.all_queues))
        log.warning("purge: deleted %d waiting message(s) from %s", deleted, options.all_queues)
    scheduler = Beat(app, beat_options(app.conf.settings, None, None)) if beat else None
    if scheduler is not None:
        scheduler.start()  # a bad beat_schedule fails here, before anything runs
    running = run_in_thread(scheduler) if scheduler is not None else None
    signals.worker_init.send(sender=consumer)
    try:
        consumer.run()
    finally:
        if running is not None:
            running[1].set()
            running[0].join(timeout=5.0)
        signals.worker_shutdown.send(sender=consumer)


@functools.cache  # once per process
def warn_if_root() -> None:
    """Warn, as Celery does, when the worker runs as root: every task would run with root's
    rights, and anyone who can write to the broker chooses which tasks run, with what."""
    if os.geteuid() == 0:
        log.warning(
            "this worker runs as root: every task runs with root's rights, and anyone who can "
            "write to the broker can run any registered task with any arguments. Run workers "
            "as an unprivileged user (see docs/security.md)"
        )


def slot_groups(
    queues: tuple[str, ...],
    concurrency: tuple[int, ...],
    pool: str,
    order: QueueOrder,
    s: Settings,
) -> tuple[SlotSpec, ...]:
    """The slot groups from `-Q`/`-c`: one -c for one -Q, one -c after each -Q, or N in the
    -Q itself."""
    specs = queues or (",".join(default_consumed(s)),)
    fallback = 1 if pool == "solo" else (s.worker_concurrency or os.cpu_count() or 1)
    if len(specs) > 1 and concurrency and len(concurrency) != len(specs):
        raise click.UsageError(
            f"{len(specs)} slot groups (-Q) but {len(concurrency)} -c: give one -c after each "
            "-Q, or the concurrency inside each: -Q high,default:3 -Q low:1"
        )
    if len(specs) == 1 and len(concurrency) > 1:
        raise click.UsageError("one slot group (-Q) takes one -c")
    out = []
    for i, text in enumerate(specs):
        count = concurrency[i] if concurrency else None
        spec = parse_slot_spec(text, count or fallback, pool, order)
        if count is not None and ":" in text and spec.concurrency != count:
            raise click.UsageError(f"-Q {text!r} gives its concurrency and -c {count} another")
        out.append(spec)
    return tuple(out)


def _if_process(groups: tuple[SlotSpec, ...], value: int | None) -> int | None:
    """A process-pool recycling setting, only when some group has a process pool."""
    return value if any(g.pool == "process" for g in groups) else None


def warn_unused_queues(app: Conveyor, consumed: tuple[str, ...]) -> None:
    """Warn about consumed queues that no route, task or declaration uses (a typo in -Q
    would otherwise wait for ever on an empty queue)."""
    from ..finalize import queues_in_use

    known = queues_in_use(app)
    for queue in consumed:
        if queue not in known:
            log.warning(
                "this worker consumes queue %r, but no route, task, task_queues or "
                "beat_schedule entry uses it%s; queues in use: %s",
                queue,
                did_you_mean(queue, known),
                ", ".join(sorted(known)),
            )
