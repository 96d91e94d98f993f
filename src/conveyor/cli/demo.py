"""`conveyor demo` — tasks flowing end to end on the embedded SQLite default.

Starts a real worker process (publishing its events, serving metrics), enqueues a batch
across two queues (some calls retry, one fails), follows them with a progress bar, prints what
happened to each and the worker's counters from its /metrics.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..result import AsyncResult
from ..states import TaskState

_DEADLINE = 50.0


@click.command()
@click.option(
    "--db",
    "db_path",
    default="conveyor-demo.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="SQLite file for the demo (recreated).",
)
@click.option("-c", "--concurrency", default=3, show_default=True, type=click.IntRange(1, 16))
def demo(db_path: str, concurrency: int) -> None:
    """Run a worker and a batch of example tasks, then show a summary."""
    console = Console()
    path = Path(db_path).resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.environ["CONVEYOR_BROKER_URL"] = f"sqlite:///{path}"
    os.environ.pop("CONVEYOR_RESULT_BACKEND", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)  # read when conveyor's is unset
    from .. import demo_app

    app = demo_app.app
    log_path = path.with_suffix(".log")
    port = _free_port()
    console.print(
        f"[bold]conveyor demo[/]: starting a worker ({concurrency} processes) on "
        f"queues emails,reports"
    )
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conveyor",
                "-A",
                "conveyor.demo_app",
                "worker",
                "-Q",
                "emails,reports",
                "-c",
                str(concurrency),
                "-l",
                "info",
                "-n",
                "demo@%h",
                "-E",  # task events to the event stream: `conveyor events` shows the run
                "--metrics-port",
                str(port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
        try:
            _wait_for_worker(app, proc)
            results = _enqueue(app, console)
            _follow(results, console, proc)
            counts = _scrape(port, len(results))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=40)
    _summary(results, console)
    console.print(f"\nmessages and results live in [bold]{path}[/]; worker log: {log_path}")
    console.print(f"history: [bold]conveyor -b sqlite:///{path} results --state FAILURE[/]")
    console.print(f"events: [bold]conveyor -b sqlite:///{path} events --history 20[/]")
    console.print(
        f"metrics (the worker's /metrics on port {port}, scraped before it stopped): "
        + ", ".join(f"{word} {counts.get(word, 0):g}" for word in _COUNTED)
    )
    console.print(
        "next: write tasks in your own module and run "
        "[bold]conveyor -A yourmodule worker -l info[/]"
    )


_COUNTED = ("received", "succeeded", "failed", "retried")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int, calls: int) -> dict[str, float]:
    """The worker's task counters, summed over tasks and queues, once every call is counted
    (its metrics follow its events, a few milliseconds behind the results)."""
    counts: dict[str, float] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        counts = {
            word: sum(
                s.value
                for f in text_string_to_metric_families(text)
                if f.name == f"conveyor_tasks_{word}"
                for s in f.samples
                if s.name == f"conveyor_tasks_{word}_total"
            )
            for word in _COUNTED
        }
        if counts["succeeded"] + counts["failed"] >= calls:
            break
        time.sleep(0.05)
    return counts


def _wait_for_worker(app: object, proc: subprocess.Popen[bytes]) -> None:
    from ..app import Conveyor

    assert isinstance(app, Conveyor)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the demo worker exited with code {proc.returncode}")
        if any(w.name.startswith("demo@") and w.stopped_at is None for w in app.broker.workers()):
            return
        time.sleep(0.1)
    raise click.ClickException("the demo worker did not start within 30 s")


def _enqueue(app: object, console: Console) -> list[tuple[str, AsyncResult]]:
    from .. import demo_app as d

    calls: list[tuple[str, AsyncResult]] = []
    calls += [("send_email", d.send_email.delay(i)) for i in range(1, 13)]
    calls += [("build_report", d.build_report.delay(m)) for m in range(1, 7)]
    calls += [("sync_calendar", d.sync_calendar.delay(f"acct-{i}", i % 3)) for i in range(1, 5)]
    calls += [("charge_card", d.charge_card.delay(4242))]
    console.print(f"enqueued {len(calls)} calls on 2 queues")
    return calls


def _follow(
    calls: list[tuple[str, AsyncResult]], console: Console, proc: subprocess.Popen[bytes]
) -> None:
    app = calls[0][1].app
    ids = [r.id for _, r in calls]
    deadline = time.monotonic() + _DEADLINE
    columns = (TextColumn("running"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("tasks", total=len(ids))
        while time.monotonic() < deadline:
            done = sum(o.state.ready for o in app.results.get_many(ids).values())
            progress.update(bar, completed=done)
            if done == len(ids):
                return
            if proc.poll() is not None:
                raise click.ClickException("the demo worker stopped unexpectedly; see its log")
            time.sleep(0.1)
    raise click.ClickException("the demo did not finish in time; see the worker log")


def _summary(calls: list[tuple[str, AsyncResult]], console: Console) -> None:
    table = Table(title="what happened")
    for col in ("task", "queue", "state", "attempts", "run time", "worker"):
        table.add_column(col, no_wrap=True)
    colors = {TaskState.SUCCESS: "green", TaskState.FAILURE: "red"}
    errors: list[str] = []
    counts: dict[str, int] = {}
    for name, res in calls:
        o = res.outcome
        state = o.state if o is not None else TaskState.PENDING
        counts[state.value] = counts.get(state.value, 0) + 1
        if o is None:
            table.add_row(name, "-", state.value, "-", "-", "-")
            continue
        runtime = (
            f"{(o.finished_at - o.started_at) * 1000:.0f} ms"
            if o.started_at and o.finished_at
            else "-"
        )
        table.add_row(
            name,
            o.queue or "-",
            f"[{colors.get(state, 'yellow')}]{state.value}[/]",
            str(o.attempt),
            runtime,
            o.worker or "-",
        )
        if state is TaskState.FAILURE and o.error is not None:
            errors.append(f"{name}[{o.task_id[:8]}]: {o.error.type}: {o.error.message}")
    console.print(table)
    console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for line in errors:
        console.print(f"[red]failed[/] {escape(line)}")
