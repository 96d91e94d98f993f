"""What every sub-command shares: loading the app named by `-A`, turning conveyor's errors into
one clear line and a non-zero exit code, and logging; errors and log lines show URLs without
their secrets."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from .. import signals
from .._urls import mask_urls_in
from ..app import Conveyor
from ..errors import ConveyorError
from ..log import task_logger
from ..logformat import FORMATS, TEXT_FORMAT, MaskingFormatter, configure

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliContext:
    app_spec: str | None
    broker: str | None
    _app: Conveyor | None = field(default=None, repr=False)

    def app(self, required: bool = False) -> Conveyor:
        """The app from -A; without -A (and not required), a bare app on the default URLs."""
        if self._app is None:
            if self.app_spec:
                from ..loader import load_app

                self._app = load_app(self.app_spec)
            elif required:
                raise click.UsageError("this command needs -A MODULE (where your app lives)")
            else:
                self._app = Conveyor("conveyor")
            if self.broker:
                self._app._broker_arg = self.broker
        return self._app


def run_cli(group: click.Group) -> int:
    """Run the group; conveyor's errors print as `Error: ...` with exit code 2."""
    try:
        code = group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (ConveyorError, NotImplementedError) as exc:
        click.echo(f"Error: {mask_urls_in(str(exc))}", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    return code if isinstance(code, int) else 0


LOG_FORMAT = TEXT_FORMAT


def setup_logging(level: str, logfile: str | None = None, fmt: str = "text") -> None:
    """Configure the root logger in format `fmt` ("text" or "json", see logformat.py), unless a
    `setup_logging` signal receiver is connected: then, as in Celery, the receiver configures
    logging and conveyor leaves it alone. After configuring, sends `after_setup_logger` with
    the root logger, then `after_setup_task_logger` with the task loggers' parent."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise click.BadParameter(f"unknown log level {level!r}", param_hint="--loglevel")
    options = {"loglevel": numeric, "logfile": logfile, "format": LOG_FORMAT, "colorize": False}
    if signals.setup_logging.send(sender=None, **options):
        return
    try:
        handler: logging.Handler = (
            logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stderr)
        )
    except OSError as exc:  # checked when parsed; this is the race after the check
        raise click.BadParameter(
            f"cannot write the log file {logfile}: {exc.strerror or exc}",
            param_hint="'-f' / '--logfile'",
        ) from None
    configure(fmt, numeric, handler, logfile)
    signals.after_setup_logger.send(sender=None, logger=logging.getLogger(), **options)
    signals.after_setup_task_logger.send(sender=None, logger=task_logger(), **options)


def log_format_option() -> Callable[[F], F]:
    """`--log-format text|json` (default: the app's worker_log_format)."""
    return click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        help="text (default: worker_log_format) or json: one JSON object per line.",
    )


__all__ = [
    "LOG_FORMAT",
    "CliContext",
    "MaskingFormatter",
    "log_format_option",
    "run_cli",
    "setup_logging",
]
