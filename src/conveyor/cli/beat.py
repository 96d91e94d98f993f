"""`conveyor -A proj beat`: a scheduler process. Run as many as you like — one leads and
fires, the others stand by and take over within one lease period when it dies."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from .. import signals
from .._urls import safe_url
from ..app import Conveyor
from ..config import Settings
from ..logformat import banner
from ..scheduler.beat import Beat, BeatOptions
from ..scheduler.foreign import ignored_notice
from .context import CliContext, log_format_option, setup_logging
from .detach import detach as run_detached
from .files import Pidfile, exit_on_sigterm, logfile_option, pidfile_option

log = logging.getLogger("conveyor.beat")


@click.command()
@click.option("-l", "--loglevel", default="warning", show_default=True)
@log_format_option()
@logfile_option()
@pidfile_option("scheduler")
@click.option(
    "-D",
    "--detach",
    is_flag=True,
    help="Run the scheduler in the background (a new session; output to --logfile, else "
    "discarded) and return once it has started.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.5),
    help="Seconds of the leader lease (default beat_lease_seconds, 10): how long a dead "
    "leader's lease holds off the others.",
)
@click.option(
    "--max-interval",
    type=click.FloatRange(min=0.05),
    help="Longest sleep between checks (default beat_max_loop_interval, 5): run-time "
    "schedule changes are seen within it.",
)
@click.option(
    "-s",
    "--schedule",
    "schedule_file",
    metavar="FILE",
    help="Accepted for Celery compatibility and not used: the schedule and its progress live "
    "in the result backend's database.",
)
@click.option(
    "-S",
    "--scheduler",
    "scheduler_class",
    metavar="CLASS",
    help="Accepted for Celery compatibility and not used: conveyor's scheduler is always "
    "database-backed (what django_celery_beat's DatabaseScheduler adds to Celery).",
)
@click.pass_obj
def beat(
    ctx: CliContext,
    loglevel: str,
    log_format: str | None,
    logfile: str | None,
    pidfile: Path | None,
    detach: bool,
    lease: float | None,
    max_interval: float | None,
    schedule_file: str | None,
    scheduler_class: str | None,
) -> None:
    """Run the scheduler: send the periodic tasks of beat_schedule and `conveyor schedule`."""
    app = ctx.app(required=True)  # first: its module may connect the setup_logging signal
    if detach:
        run_detached("beat", pidfile, logfile)  # exits this process
    fmt = log_format or app.conf.settings.worker_log_format
    setup_logging(loglevel, logfile, fmt)
    exit_on_sigterm()
    pidlock = Pidfile.acquire(pidfile) if pidfile else None
    try:
        _run(app, lease, max_interval, schedule_file or scheduler_class, fmt)
    finally:
        if pidlock is not None:
            pidlock.release()


def _run(
    app: Conveyor, lease: float | None, max_interval: float | None, ignored: str | None, fmt: str
) -> None:
    """Start the scheduler and run it until a signal stops it."""
    scheduler = Beat(app, beat_options(app.conf.settings, lease, max_interval))
    entries = scheduler.start()
    notice = ignored_notice(ignored or app.conf.settings.beat_scheduler, safe_url(app.urls[1]))
    if notice is not None:
        log.log(*notice)
    line = (
        f"conveyor beat {scheduler.options.holder}: {len(entries)} entries from beat_schedule, "
        f"{len(scheduler.store.entries())} stored, schedule in {safe_url(app.urls[1])}"
    )
    click.echo(banner(line, log.name, fmt), err=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    signals.beat_init.send(sender=scheduler)
    scheduler.run(stop)


def beat_options(
    settings: Settings, lease: float | None, max_interval: float | None
) -> BeatOptions:
    """The scheduler's options: the settings, overridden by command-line flags."""
    base = BeatOptions.from_settings(settings)
    return BeatOptions(
        lease=lease or base.lease,
        max_interval=max_interval or base.max_interval,
        grace=base.grace,
        holder=base.holder,
    )


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        log.warning("%s received: the scheduler stops", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
