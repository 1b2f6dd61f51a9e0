"""`wacast projections list` and `wacast projections rebuild [NAME]`.

Projections are found through the `wacast.projections` entry point group; see
`wacast.runtime.registry` for how a package registers its own.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from wacast.cli.commands_common import (
    Options,
    connect_postgres,
    err,
    nats_session,
    options,
    reported,
    run,
)
from wacast.cli.progress import tracker
from wacast.cli.rebuild import rebuild_projections, select
from wacast.runtime.registry import GROUP, ProjectionRegistration, discover

app = typer.Typer(help="Read models in Postgres, built from the streams.", no_args_is_help=True)

NONE_REGISTERED = f"no projections are registered (entry point group {GROUP!r})"


@app.command("list")
def list_command() -> None:
    """Show the registered projections and their schemas."""
    with reported():
        registrations = discover()
    if not registrations:
        err(NONE_REGISTERED)
        return
    table = Table("name", "schema", "description")
    for r in registrations:
        table.add_row(r.name, r.schema, r.description)
    Console().print(table)


@app.command("rebuild")
def rebuild_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One projection; all when omitted")] = None,
) -> None:
    """Replay the streams into a shadow schema of each projection and swap it in."""
    run(rebuild(options(ctx), name))


async def rebuild(
    opts: Options, name: str | None, registrations: list[ProjectionRegistration] | None = None
) -> dict[str, dict[str, int]]:
    """Rebuild `name` (or every registered projection); `registrations` replaces discovery."""
    found = discover() if registrations is None else registrations
    if not found:
        err(NONE_REGISTERED)
        return {}
    chosen = select(found, name)
    pool = await connect_postgres(opts.database_url)
    try:
        async with nats_session(opts) as nc:
            with tracker(opts.quiet) as progress:
                reached = await rebuild_projections(nc, pool, opts.topology, chosen, progress)
    finally:
        await pool.close()
    for projection, positions in reached.items():
        at = ", ".join(f"{stream} {seq}" for stream, seq in positions.items())
        err(f"rebuilt {projection}: reached {at}")
    return reached
