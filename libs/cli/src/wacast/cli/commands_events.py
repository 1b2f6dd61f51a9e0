"""`wacast events export FILE` and `wacast events import FILE` (`-`: stdout / stdin)."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from wacast.cli.commands_common import CliError, Options, err, nats_session, options, run
from wacast.cli.commands_import import import_events
from wacast.cli.commands_lines import Plan, validate
from wacast.cli.export import export_events
from wacast.cli.progress import tracker

app = typer.Typer(help="Export and import the event streams as JSON Lines.", no_args_is_help=True)


@app.command("export")
def export_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Where to write the JSON Lines; - for stdout")],
) -> None:
    """Write every stored event of every stream, in stream order."""
    run(export(options(ctx), file))


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="An export file; - for stdin")],
    force: Annotated[bool, typer.Option(help="Import into a namespace that is not empty")] = False,
    keep_undecodable: Annotated[
        bool, typer.Option(help="Store events this version cannot decode as they are")
    ] = False,
) -> None:
    """Validate the whole file, then append its events; a re-run stores nothing twice."""
    run(import_file(options(ctx), file, force=force, keep_undecodable=keep_undecodable))


def summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items() if n) or "no events"


async def export(opts: Options, file: str) -> dict[str, int]:
    async with nats_session(opts) as nc:
        with tracker(opts.quiet) as progress:
            if file == "-":
                counts = await export_events(nc, opts.topology, sys.stdout.buffer, progress)
            else:
                # Written aside and renamed at the end: a failed export leaves no short file.
                target = Path(file)
                if not target.parent.is_dir():
                    raise CliError(f"no such directory: {target.parent}", 2)
                partial = target.with_name(target.name + ".partial")
                with partial.open("wb") as out:
                    counts = await export_events(nc, opts.topology, out, progress)
                partial.replace(target)
    err(f"exported {sum(counts.values())} events ({summary(counts)}) to {file}")
    return counts


@contextlib.contextmanager
def readable(file: str) -> Iterator[Path]:
    """A path to read twice (validate, then import); stdin is spooled to a temporary file."""
    if file != "-":
        path = Path(file)
        if not path.is_file():
            raise CliError(f"no such file: {file}", 2)
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="wacast-import-", suffix=".jsonl") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        yield Path(spool.name)


def report_bad_lines(plan: Plan, file: str) -> None:
    for error in plan.errors:
        err(f"{file}: {error}")
    if plan.bad_lines > len(plan.errors):
        err(f"{file}: ... and {plan.bad_lines - len(plan.errors)} more bad lines")
    raise CliError(f"{file}: {plan.bad_lines} bad lines; nothing was imported", 2)


async def import_file(
    opts: Options, file: str, *, force: bool = False, keep_undecodable: bool = False
) -> dict[str, int]:
    with readable(file) as path:
        plan = validate(path, keep_undecodable)
        if plan.bad_lines:
            report_bad_lines(plan, file)
        async with nats_session(opts) as nc:
            with tracker(opts.quiet) as progress:
                outcome = await import_events(
                    nc,
                    opts.topology,
                    path,
                    plan,
                    progress,
                    force=force,
                    replicas=opts.stream_replicas,
                )
    stored = sum(outcome.stored.values())
    note = f"; {outcome.skipped} were there already" if outcome.skipped else ""
    kept = f"; {plan.undecodable} kept undecoded" if plan.undecodable else ""
    err(f"imported {stored} events ({summary(outcome.stored)}) into {opts.namespace!r}{note}{kept}")
    return outcome.stored
