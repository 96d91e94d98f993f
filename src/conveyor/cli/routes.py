"""`conveyor -A proj routes`: where every task goes, and what is wrong with the routes.

Exit status 0 when every route checks out, 1 when there are problems (whether or not
`task_routes_strict` makes them fatal elsewhere), so CI can run it as a check.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import click

from ..app import Conveyor
from ..finalize import decisions, problems
from ..routing import PatternRoute
from .columns import aligned
from .context import CliContext


@dataclass(frozen=True, slots=True)
class RouteRow:
    task: str
    queue: str
    priority: int
    rate_limit: str | None
    time_limit: float | None
    soft_time_limit: float | None
    routed_by: str


def route_rows(app: Conveyor) -> list[RouteRow]:
    """One row per registered task, in queue order (see `queue_order`), then by name."""
    s = app.conf.settings
    rows = []
    for name, decision in decisions(app).items():
        o = app.tasks[name].options
        rate = o.rate_limit or (
            f"{o.per_worker_rate_limit} per worker" if o.per_worker_rate_limit else None
        )
        rows.append(
            RouteRow(
                task=name,
                queue=decision.queue if decision.error is None else "?",
                priority=decision.priority,
                rate_limit=rate or s.task_default_rate_limit,
                time_limit=o.time_limit or s.task_time_limit,
                soft_time_limit=o.soft_time_limit or s.task_soft_time_limit,
                routed_by=decision.source,
            )
        )
    order = {q: i for i, q in enumerate(queue_order(app, rows))}
    return sorted(rows, key=lambda r: (order[r.queue], r.task))


def queue_order(app: Conveyor, rows: Sequence[RouteRow]) -> list[str]:
    """Declared queues first, then queues in the order routes name them, then the rest."""
    declared = [q.name for q in app.conf.settings.task_queues or ()]
    routed = [
        r.destination.queue
        for r in app.route_table.rules
        if isinstance(r, PatternRoute) and r.destination.queue
    ]
    rest = sorted({row.queue for row in rows})
    return list(dict.fromkeys([*declared, *routed, *rest]))


def summary(rows: Sequence[RouteRow], order: Sequence[str]) -> str:
    """'17 tasks: 2 → high, 9 → default, 6 → low'."""
    counts = Counter(row.queue for row in rows)
    parts = [f"{counts[q]} → {q}" for q in order if counts[q]]
    return f"{len(rows)} task{'s' if len(rows) != 1 else ''}: {', '.join(parts) or 'none'}"


def _limits(row: RouteRow) -> str:
    parts = [f"soft {row.soft_time_limit:g}s"] if row.soft_time_limit else []
    parts += [f"hard {row.time_limit:g}s"] if row.time_limit else []
    return ", ".join(parts) or "-"


_COLUMNS = ("task", "priority", "rate limit", "time limits", "routed by")


def render(rows: Sequence[RouteRow], order: Sequence[str]) -> str:
    """Plain aligned columns, one block per queue (never truncated, unlike a boxed table)."""
    cells = {
        id(r): (r.task, str(r.priority), r.rate_limit or "-", _limits(r), r.routed_by) for r in rows
    }
    out = []
    for queue in order:
        group = [r for r in rows if r.queue == queue]
        if group:
            out += [f"{queue} ({len(group)} task{'s' if len(group) != 1 else ''})"]
            out += aligned(_COLUMNS, [cells[id(r)] for r in group], list(cells.values()))
            out += [""]
    out.append(summary(rows, order))
    return "\n".join(out)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {task, queue, …}.")
@click.pass_obj
def routes(ctx: CliContext, as_json: bool) -> None:
    """Show where every task goes (queue, priority, rate limit, time limits) and check the
    routes; exits 1 listing the problems when a check fails."""
    app = ctx.app(required=True)
    app.import_modules()
    rows = route_rows(app)
    found = problems(app)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        click.echo(render(rows, queue_order(app, rows)))
    if found:
        click.echo(f"\n{len(found)} routing problem(s):", err=True)
        for problem in found:
            click.echo(f"  - {problem.message}", err=True)
        raise click.exceptions.Exit(1)
