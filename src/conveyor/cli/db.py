"""`conveyor db upgrade|status` — the PostgreSQL schema of the app's broker and result store.

Conveyor migrates its schema by itself on first use; `db upgrade` is for deployments that turn
that off (`database_create_tables_at_setup=False`) and migrate as a release step instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from .._postgres import PgDatabase, PgTarget, parse_url
from .._urls import scrub
from ..errors import BackendUnavailable
from ..pgschema import current_version, latest, upgrade
from .context import CliContext


def _targets(ctx: CliContext) -> list[PgTarget]:
    found: dict[tuple[str, str], PgTarget] = {}
    for url in ctx.app().urls:
        if url.split(":", 1)[0].lower().removeprefix("db+").startswith("postgres"):
            target = parse_url(url)
            found.setdefault((target.conninfo, target.schema), target)
    if not found:
        raise click.UsageError(
            "neither the broker nor the result backend of this app is a postgresql:// URL; "
            "the other backends need no migrations"
        )
    return list(found.values())


@contextmanager
def _opened(target: PgTarget) -> Iterator[PgDatabase]:
    """A one-connection pool on `target`; a server that does not answer is an `Error: …`
    naming it and the last connection error (a refused login or database is already a
    ConfigurationError), never a traceback."""
    database = PgDatabase(target, max_size=1, name="conveyor-migrate")
    try:
        yield database
    except database.errors as exc:
        reason = scrub(" ".join(str(exc).split()), target.conninfo)
        raise BackendUnavailable(
            f"the PostgreSQL server at {target.shown} did not answer ({type(exc).__name__}: "
            f"{reason}); check that it runs and that the URL names it"
        ) from None
    finally:
        database.close()


@click.group()
def db() -> None:
    """The PostgreSQL schema conveyor keeps its tables in."""


@db.command("upgrade")
@click.option("--to", "to", type=int, default=None, help="Stop at this schema version.")
@click.pass_obj
def upgrade_cmd(ctx: CliContext, to: int | None) -> None:
    """Create the schema or apply the migrations it lacks (safe to run concurrently)."""
    for target in _targets(ctx):
        with _opened(target) as database:
            applied = upgrade(database, to)
        if applied:
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
            click.echo(f"{target.shown} schema {target.schema}: applied {names}")
        else:
            click.echo(
                f"{target.shown} schema {target.schema}: already at version {to or latest()}"
            )


@db.command("status")
@click.pass_obj
def status_cmd(ctx: CliContext) -> None:
    """Show each schema's version; exit 1 when one needs `db upgrade`."""
    behind = False
    for target in _targets(ctx):
        with _opened(target) as database, database.connection() as conn:
            have = current_version(conn, target.schema)
        state = "up to date" if have == latest() else f"needs upgrade to {latest()}"
        behind = behind or have < latest()
        click.echo(f"{target.shown} schema {target.schema}: version {have}, {state}")
    if behind:
        raise click.exceptions.Exit(1)
