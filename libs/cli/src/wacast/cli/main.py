"""The `wacast` command line.

Connection settings come from the same `WACAST_*` variables as the services
(`WACAST_NATS_URL`, `WACAST_NAMESPACE`, `WACAST_DATABASE_URL`); the global options
`--nats-url`, `--namespace` and `--database-url` override them for one run. Failures the
user can act on are one line on stderr and a non-zero exit status: 1 for a failure, 2 for
bad input or configuration, 3 for a refusal (e.g. importing into a namespace that is not
empty without `--force`), 130 when interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from wacast.cli import (
    commands_backup,
    commands_bench,
    commands_clock,
    commands_events,
    commands_leads,
    commands_projections,
    commands_tenants,
)
from wacast.cli.commands_common import Options, fail
from wacast.contracts.subjects import Topology
from wacast.runtime.settings import CommonSettings, SettingsError, load_settings

app = typer.Typer(
    name="wacast",
    help="wacast: WhatsApp broadcast campaigns and drip sequences over NATS JetStream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)


@app.callback()
def global_options(
    ctx: typer.Context,
    nats_url: Annotated[
        str | None, typer.Option(help="NATS server(s), comma-separated (env: WACAST_NATS_URL)")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Prefix of streams and buckets (env: WACAST_NAMESPACE)")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Postgres of the read models (env: WACAST_DATABASE_URL)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    try:
        settings = load_settings(CommonSettings)
    except SettingsError as exc:
        fail(f"configuration error: {exc}", 2)
    chosen = Options(
        nats_url=nats_url or settings.nats_url,
        namespace=namespace or settings.namespace,
        database_url=database_url or settings.database_url,
        quiet=quiet,
        stream_replicas=settings.stream_replicas,
    )
    try:
        Topology(chosen.namespace)
    except ValueError as exc:
        fail(str(exc), 2)
    ctx.obj = chosen


app.add_typer(commands_events.app, name="events")
commands_backup.register(app)
commands_bench.register(app)
app.add_typer(commands_projections.app, name="projections")
app.add_typer(commands_clock.app, name="clock")
app.add_typer(commands_leads.app, name="leads")
app.add_typer(commands_tenants.app, name="tenants")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
