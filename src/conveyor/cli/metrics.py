"""`conveyor -A proj metrics --port PORT`: the cluster exporter. Serves Prometheus metrics read
from the broker, the worker registry and the schedule store at every scrape
(observability/cluster.py), until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from prometheus_client import CollectorRegistry

from .._urls import safe_url
from ..logformat import banner
from ..observability.cluster import ClusterCollector
from ..observability.sent import SentCounter
from ..observability.serving import serve_registry
from .context import CliContext, log_format_option, setup_logging

log = logging.getLogger("conveyor.metrics")


@click.command()
@click.option(
    "--port",
    required=True,
    type=click.IntRange(min=1, max=65535),
    help="Serve the metrics at http://HOST:PORT/metrics.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to bind (0.0.0.0: every interface; the endpoint has no authentication).",
)
@click.option("-l", "--loglevel", default="warning", show_default=True)
@log_format_option()
@click.pass_obj
def metrics(ctx: CliContext, port: int, host: str, loglevel: str, log_format: str | None) -> None:
    """Export queue depths, workers and schedule progress to Prometheus."""
    app = ctx.app()  # first: its module may connect the setup_logging signal
    fmt = log_format or app.conf.settings.worker_log_format
    setup_logging(loglevel, logfile=None, fmt=fmt)
    broker_url = app.urls[0]
    if broker_url.split(":", 1)[0].lower() == "memory":
        raise click.UsageError(
            "conveyor metrics reads the broker other processes share, and memory:// lives "
            "inside one process; give the shared broker's URL (-b URL, broker_url or "
            "CONVEYOR_BROKER_URL)"
        )
    app.import_modules()  # the tasks' own queues are queues in use
    celery_names = app.conf.settings.metrics_celery_names
    collector = ClusterCollector(app, celery_names)
    registry = CollectorRegistry()
    registry.register(collector)
    sent = SentCounter(app, registry, celery_names=celery_names)
    server = serve_registry(registry, host, port, "--port")
    sent.start()
    line = f"conveyor metrics: http://{host}:{port}/metrics, broker {safe_url(broker_url)}"
    click.echo(banner(line, log.name, fmt), err=True)
    try:
        _wait_for_signal()
    finally:
        server.stop()
        sent.close()
        collector.close()
        app.close()


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s received: the exporter stops", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    while not stop.wait(1.0):
        pass
