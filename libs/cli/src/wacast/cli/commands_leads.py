"""`wacast leads import FILE`: a CSV of leads into a tenant, with a progress bar.

The file is streamed into the media object store as `uploads/<tenant>/<id>-<name>` (never
read whole into memory), then `ImportLeads` asks the campaign-service to import it; the
command follows the import's events (`leadimport.<tenant>.<id>` on the LEADS stream) until
it completes or fails, drawing the rows done against the file's rows. Rows the service
refused are listed (row number as in a spreadsheet, the header being row 1, and the
reason); `--errors FILE` writes them all as CSV. By default a row whose phone belongs to a
lead already updates that lead (`--no-update-existing` refuses such rows instead).

Exit status: 0 when the import completed (even with refused rows), 1 when it failed, 2
for bad input (a missing file, a refused command), as everywhere in the CLI.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import IO, Annotated

import msgspec
import typer
from nats.aio.client import Client

from wacast.cli.commands_common import (
    CliError,
    Options,
    err,
    nats_session,
    options,
    reported,
    run,
)
from wacast.cli.progress import tracker
from wacast.contracts import leads as ld
from wacast.contracts.commands import ImportLeads
from wacast.contracts.streams import LEADS, MEDIA_BUCKET, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.values import LeadStatus, RowError
from wacast.runtime.commands import Requester

app = typer.Typer(help="Leads of a tenant.", no_args_is_help=True)
SHOWN_ERRORS = 10


@app.command("import")
def import_leads(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="CSV with a phone column, optionally name, status, tags, device, more"),
    ],
    tenant: Annotated[
        str, typer.Option("--tenant", "-t", envvar="WACAST_TENANT", help="Tenant id")
    ],
    device: Annotated[
        str, typer.Option(help="Device of rows without their own (default: shared evenly)")
    ] = "",
    status: Annotated[
        str, typer.Option(help="Status of rows without their own: prospect or customer")
    ] = "prospect",
    tag: Annotated[
        list[str] | None, typer.Option(help="Tag every imported lead (repeatable)")
    ] = None,
    update_existing: Annotated[bool, typer.Option(help="A known phone updates its lead")] = True,
    errors: Annotated[Path | None, typer.Option(help="Write every refused row to this CSV")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the import")] = 3600.0,
) -> None:
    """Import a CSV of leads, streamed, and follow its progress."""
    if status not in ("prospect", "customer"):
        raise typer.BadParameter("must be prospect or customer", param_hint="--status")
    lead_status: LeadStatus = "customer" if status == "customer" else "prospect"
    request = ImportLeads(
        tenant_id=tenant,
        filename=file.name,
        object_name="",
        device_id=device,
        status=lead_status,
        tags=tag or [],
        update_existing=update_existing,
    )
    with reported(), file.open("rb") as body:
        size = file.stat().st_size
        outcome = run(_import(options(ctx), body, size, request, errors, timeout))
    if isinstance(outcome, ld.LeadImportFailed):
        raise typer.Exit(1)


async def _import(
    opts: Options,
    body: IO[bytes],
    size: int,
    request: ImportLeads,
    errors_path: Path | None,
    timeout: float,
) -> ld.LeadImportCompleted | ld.LeadImportFailed:
    topology, tenant = opts.topology, request.tenant_id
    object_name = f"uploads/{tenant}/{uuid.uuid4().hex[:12]}-{_safe(request.filename)}"
    async with nats_session(opts) as nc:
        obs = await nc.jetstream().object_store(topology.bucket(MEDIA_BUCKET))
        if not opts.quiet:
            err(f"uploading {request.filename} ({size} bytes)")
        await obs.put(object_name, body)  # type: ignore[arg-type]
        command = msgspec.structs.replace(request, object_name=object_name)
        reply = await Requester(nc, topology, timeout=60).send(command)
        if reply.problem is not None:
            await obs.delete(object_name)
            code = 2 if 400 <= reply.problem.status < 500 else 1
            detail = f": {reply.problem.detail}" if reply.problem.detail else ""
            raise CliError(f"{reply.problem.title} ({reply.problem.code}){detail}", code)
        outcome, refused = await _follow(nc, topology, tenant, reply.id, opts.quiet, timeout)
    _report(outcome, refused, errors_path)
    return outcome


async def _follow(
    nc: Client, topology: Topology, tenant: str, import_id: str, quiet: bool, timeout: float
) -> tuple[ld.LeadImportCompleted | ld.LeadImportFailed, list[RowError]]:
    """The import's events, as they come, until it ends."""
    js = nc.jetstream()
    subscription = await js.subscribe(
        topology.lead_import(tenant, import_id), stream=LEADS.name(topology), ordered_consumer=True
    )
    refused: list[RowError] = []
    decoder = codec(LEADS)
    try:
        with tracker(quiet) as progress:
            bar = progress.task(f"importing {import_id}", total=None)
            while True:
                try:
                    msg = await subscription.next_msg(timeout=timeout)
                except TimeoutError:
                    raise CliError(f"the import did not end within {timeout:.0f} s") from None
                event = decoder.decode(msg.data)
                if isinstance(event, ld.LeadImportProgressed):
                    bar.update(event.rows_done, event.total_rows)
                elif isinstance(event, ld.LeadImportRowsFailed):
                    refused += event.errors
                elif isinstance(event, ld.LeadImportCompleted | ld.LeadImportFailed):
                    return event, refused
    finally:
        await subscription.unsubscribe()


def _report(
    outcome: ld.LeadImportCompleted | ld.LeadImportFailed,
    refused: list[RowError],
    errors_path: Path | None,
) -> None:
    if isinstance(outcome, ld.LeadImportFailed):
        detail = f": {outcome.detail}" if outcome.detail else ""
        err(f"import failed ({outcome.reason}){detail}")
    else:
        err(
            f"imported {outcome.rows} rows: {outcome.created} created, "
            f"{outcome.updated} updated, {outcome.failed} refused"
        )
    for row_error in refused[:SHOWN_ERRORS]:
        err(f"  row {row_error.row}: {row_error.reason}")
    if len(refused) > SHOWN_ERRORS and errors_path is None:
        err(f"  ... and {len(refused) - SHOWN_ERRORS} more (--errors FILE lists them all)")
    if errors_path is not None:
        with errors_path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["row", "reason"])
            writer.writerows((e.row, e.reason) for e in refused)
        err(f"refused rows written to {errors_path}")


def _safe(name: str) -> str:
    kept = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return kept[-80:] or "leads.csv"
