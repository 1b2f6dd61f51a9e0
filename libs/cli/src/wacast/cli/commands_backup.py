"""`wacast backup DIR` and `wacast restore DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from nats.aio.client import Client
from nats.js.api import ObjectMeta

from wacast.cli.backup import (
    BUCKETS,
    EVENTS,
    MANIFEST,
    VERSION,
    Manifest,
    backup,
    bucket,
    listing,
    sha256_of,
)
from wacast.cli.commands_common import CliError, Options, err, nats_session, options, run
from wacast.cli.commands_import import Outcome, import_events, refusal
from wacast.cli.commands_lines import validate
from wacast.cli.export import stream_states
from wacast.cli.progress import Tracker, tracker
from wacast.contracts.subjects import Topology


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise CliError(f"{root} is not a complete backup: {MANIFEST} is missing", 2)
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CliError(f"{path} is malformed: {exc}", 2) from None
    if manifest.version != VERSION:
        raise CliError(f"{path} is format version {manifest.version}; this wacast reads {VERSION}")
    return manifest


def verify(root: Path, manifest: Manifest) -> None:
    """Every file the manifest lists is there, inside the backup, with its checksum."""
    problems: list[str] = []
    needed = {EVENTS, *(e.file for entries in manifest.objects.values() for e in entries)}
    problems += [
        f"{name}: not in the checksum list" for name in sorted(needed - set(manifest.files))
    ]
    for name, expected in sorted(manifest.files.items()):
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            problems.append(f"{name}: outside the backup")
        elif not (root / relative).is_file():
            problems.append(f"{name}: missing")
        elif sha256_of(root / relative) != expected:
            problems.append(f"{name}: checksum mismatch (changed since the backup)")
    unknown = sorted(set(manifest.objects) - set(BUCKETS))
    problems += [f"objects of unknown bucket {name!r}" for name in unknown]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CliError(f"backup {root} is damaged, nothing was written: {shown}")


async def restore(
    nc: Client,
    topology: Topology,
    root: Path,
    progress: Tracker,
    *,
    force: bool = False,
    keep_undecodable: bool = False,
    replicas: int = 1,
) -> tuple[Outcome, dict[str, int]]:
    manifest = load_manifest(root)
    verify(root, manifest)
    plan = validate(root / EVENTS, keep_undecodable)
    if plan.bad_lines:
        first = plan.errors[0]
        raise CliError(
            f"backup {root} has {plan.bad_lines} bad event lines ({first}); nothing was written"
        )
    if {k: n for k, n in plan.counts.items() if n} != {
        k: n for k, n in manifest.events.items() if n
    }:
        raise CliError(f"backup {root}: {EVENTS} does not hold the events the manifest counts")
    held = {
        k: s.messages
        for k, s in (await stream_states(nc.jetstream(), topology)).items()
        if s.messages
    }
    for name in BUCKETS:
        if objects := await listing(await bucket(nc, topology, name)):
            held[f"bucket {name}"] = len(objects)
    if held and not force:
        raise CliError(refusal(topology, held), 3)
    outcome = await import_events(
        nc, topology, root / EVENTS, plan, progress, force=True, replicas=replicas
    )
    restored: dict[str, int] = {}
    for name, entries in manifest.objects.items():
        store = await bucket(nc, topology, name)
        if store is None:
            raise CliError(f"bucket {topology.bucket(name)} was not created")
        task = progress.task(f"objects {name}", total=len(entries))
        for entry in entries:
            try:
                with (root / entry.file).open("rb") as source:
                    meta = ObjectMeta(entry.name, entry.description, entry.headers)
                    await store.put(entry.name, source, meta=meta)
            except Exception as exc:
                raise CliError(
                    f"restoring object {entry.name!r} of {name} failed ({exc!r}); the events "
                    "are restored: run restore again with --force to finish (stored events "
                    "are skipped, objects written again)"
                ) from None
            task.advance()
        restored[name] = len(entries)
    return outcome, restored


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_command(
        ctx: typer.Context,
        directory: Annotated[Path, typer.Argument(help="New (or empty) directory to write")],
    ) -> None:
        """Back up what cannot be rebuilt: every stream, media objects, WhatsApp sessions."""
        run(_backup(options(ctx), directory))

    @app.command("restore")
    def restore_command(
        ctx: typer.Context,
        directory: Annotated[Path, typer.Argument(help="A directory written by `wacast backup`")],
        force: Annotated[
            bool, typer.Option(help="Restore into a namespace that is not empty")
        ] = False,
        keep_undecodable: Annotated[
            bool, typer.Option(help="Store events this version cannot decode as they are")
        ] = False,
    ) -> None:
        """Verify a backup's checksums, then restore its events and objects."""
        run(_restore(options(ctx), directory, force, keep_undecodable))


async def _backup(opts: Options, directory: Path) -> None:
    async with nats_session(opts) as nc:
        with tracker(opts.quiet) as progress:
            manifest = await backup(nc, opts.topology, directory, progress)
    objects = ", ".join(f"{name} {len(e)}" for name, e in manifest.objects.items())
    err(f"backed up {sum(manifest.events.values())} events and objects ({objects}) to {directory}")


async def _restore(opts: Options, directory: Path, force: bool, keep_undecodable: bool) -> None:
    async with nats_session(opts) as nc:
        with tracker(opts.quiet) as progress:
            outcome, objects = await restore(
                nc,
                opts.topology,
                directory,
                progress,
                force=force,
                keep_undecodable=keep_undecodable,
                replicas=opts.stream_replicas,
            )
    counts = ", ".join(f"{name} {n}" for name, n in objects.items())
    err(
        f"restored {sum(outcome.stored.values())} events ({outcome.skipped} already there) "
        f"and objects ({counts}) into namespace {opts.topology.prefix!r}"
    )
