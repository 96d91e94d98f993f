"""`conveyor events` — tail the cluster's event stream in the broker (Celery's `celery events`
without the curses screen): one line per event as workers, producers and schedulers publish
them. See docs/observability.md, "Tailing the cluster's events"."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click
import msgspec

from ..brokers.base import Broker, StreamEntry, last_cursor
from ..events import Event, EventDecodeError, TaskEvent, from_dict, to_dict
from .context import CliContext

_PAGE = 500  # entries read per call; a full page is followed at once by the next
_SHOWN = 80  # characters of a field's value shown in a human line

# The fields shown after `name[uuid]`, per event type, in this order (when set).
_FIELDS: dict[str, tuple[str, ...]] = {
    "task-sent": ("queue", "priority", "eta", "expires", "parent_id"),
    "task-received": ("queue", "attempt", "retries", "eta"),
    "task-started": ("queue", "attempt", "pid"),
    "task-succeeded": ("queue", "runtime"),
    "task-failed": ("queue", "runtime", "exception"),
    "task-retried": ("queue", "retries", "eta", "exception"),
    "task-revoked": ("terminated", "expired", "signum"),
    "task-rejected": ("queue", "requeue", "reason"),
    "task-lease-lost": ("queue", "attempt"),
    "worker-online": ("pid", "queues", "slots", "sw_ver"),
    "worker-heartbeat": ("active", "slots", "processed", "failed", "loadavg"),
    "worker-offline": ("pid", "processed"),
    "schedule-fired": ("entry", "uuid", "scheduled_for"),
    "schedule-skipped": ("entry", "scheduled_for", "reason"),
}
_TIMES = frozenset({"eta", "expires", "scheduled_for"})


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the event) per line.")
@click.option(
    "--history",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="First print the newest N events the stream still holds, then follow.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0),
    metavar="SECONDS",
    help="Stop after this many seconds (default: follow until Ctrl-C).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop after printing N events.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="How often to look for new events when none are waiting.",
)
@click.pass_obj
def events(
    ctx: CliContext,
    as_json: bool,
    history: int,
    timeout: float | None,
    count: int | None,
    interval: float,
) -> None:
    """Follow the events workers, producers and schedulers publish to the broker."""
    broker = ctx.app().broker
    deadline = None if timeout is None else time.monotonic() + timeout
    tail = Tail(broker, as_json, count)
    try:
        tail.start(history)
        while not tail.done:
            read = tail.poll()
            left = interval if deadline is None else min(interval, deadline - time.monotonic())
            if left <= 0:
                break
            if read < _PAGE:  # caught up: wait before looking again (a full page: read on)
                time.sleep(left)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a tail ends


class Tail:
    """Reads the stream from a cursor and prints each entry (see `events`)."""

    def __init__(self, broker: Broker, as_json: bool, count: int | None) -> None:
        self.broker = broker
        self.as_json = as_json
        self.left = count
        self.cursor = ""

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0

    def start(self, history: int) -> None:
        """Print the newest `history` entries, and follow from the newest entry."""
        if history:
            shown = self.broker.read_events(None, history)
            self.cursor = last_cursor(self.broker) if not shown else shown[-1].cursor
            self._print(shown)
        else:
            self.cursor = last_cursor(self.broker)

    def poll(self) -> int:
        """Print the entries after the cursor (one page); returns how many were read."""
        page = self.broker.read_events(self.cursor, _PAGE)
        if page:
            self.cursor = page[-1].cursor
            self._print(page)
        return len(page)

    def _print(self, entries: list[StreamEntry]) -> None:
        for entry in entries:
            if self.done:
                break
            event = _decode(entry)
            if event is None:
                continue
            click.echo(json.dumps(to_dict(event)) if self.as_json else human_line(event))
            if self.left is not None:
                self.left -= 1
        sys.stdout.flush()  # a reader on a pipe sees each page as it comes


def _decode(entry: StreamEntry) -> Event | None:
    """The entry's event, or None after printing a warning (stderr) saying why it is skipped."""
    try:
        data = msgspec.json.decode(entry.body)
        if not isinstance(data, dict):
            raise EventDecodeError(f"a JSON {type(data).__name__}, not an object")
        return from_dict(data)
    except (msgspec.DecodeError, EventDecodeError) as exc:
        shown = entry.body[:_SHOWN].decode("utf-8", "replace")
        click.echo(
            f"warning: skipped stream entry {entry.cursor}: not an event this conveyor can "
            f"read ({exc}): {shown!r}",
            err=True,
        )
        return None


def human_line(event: Event) -> str:
    """`time type hostname name[uuid] key=value …` for one event."""
    data = to_dict(event)
    parts = [_time(event.timestamp), f"{event.type.value:<16}", event.hostname]
    if isinstance(event, TaskEvent):
        parts.append(f"{event.name or '?'}[{event.uuid}]")
    elif "name" in data:
        parts.append(str(data["name"]))
    for key in _FIELDS.get(event.type.value, ()):
        value = data.get(key)
        if value is not None and value not in ((), []):
            parts.append(f"{key}={_value(key, value)}")
    return " ".join(parts)


def _value(key: str, value: Any) -> str:
    if key in _TIMES and isinstance(value, int | float):
        return _time(float(value))
    if key == "runtime" and isinstance(value, float):
        return f"{value:.3f}s"
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
