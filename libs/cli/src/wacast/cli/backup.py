"""Backup and restore of what cannot be rebuilt: the streams, media bytes, WhatsApp sessions.

A backup directory holds `events.jsonl` (the export format), one file per object under
`objects/<bucket>/`, and `manifest.json`, written last: the namespace, the time, counts,
each stream's last sequence, every object's name and meta, and the sha256 of every file.
Backing up a running system is consistent per stream: each stream is exported up to the
last sequence it had when the backup started. Restore checks every checksum and every event
line before it writes anything.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from wacast.cli.commands_common import CliError
from wacast.cli.export import export_events, stream_states
from wacast.cli.progress import Tracker
from wacast.contracts.streams import MEDIA_BUCKET, SESSIONS_BUCKET
from wacast.contracts.subjects import Topology

VERSION = 1
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
BUCKETS = (MEDIA_BUCKET, SESSIONS_BUCKET)


class ObjectEntry(msgspec.Struct):
    name: str
    file: str
    """Path relative to the backup directory."""
    size: int
    description: str | None = None
    headers: dict[str, Any] | None = None


class FileSum(msgspec.Struct):
    sha256: str
    size: int


class Manifest(msgspec.Struct):
    version: int
    namespace: str
    created: str
    events: dict[str, int]
    """Events of each stream in `events.jsonl`."""
    last_seq: dict[str, int]
    """Each stream's last sequence when the backup started (the consistency point)."""
    objects: dict[str, list[ObjectEntry]]
    files: dict[str, FileSum]


def sha256_of(path: Path) -> FileSum:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileSum(digest.hexdigest(), size)


def file_name(name: str, taken: set[str]) -> str:
    """A safe, unique file name for an object name (the manifest maps it back)."""
    plain = name.replace("/", "_").replace("\\", "_")
    if not plain or plain.startswith(".") or not plain.isprintable() or len(plain) > 120:
        plain = "_" + hashlib.sha256(name.encode()).hexdigest()
    candidate, n = plain, 1
    while candidate.lower() in taken:  # also unique on case-insensitive file systems
        n += 1
        candidate = f"{plain}~{n}"
    taken.add(candidate.lower())
    return candidate


async def bucket(nc: Client, topology: Topology, name: str) -> ObjectStore | None:
    try:
        return await nc.jetstream().object_store(topology.bucket(name))
    except (BucketNotFoundError, NotFoundError):
        return None


async def listing(store: ObjectStore | None) -> list[Any]:
    if store is None:
        return []
    try:
        return [info for info in await store.list(ignore_deletes=True) if not info.deleted]
    except NotFoundError:
        return []


async def save_bucket(
    nc: Client, topology: Topology, name: str, root: Path, tracker: Tracker
) -> list[ObjectEntry]:
    store = await bucket(nc, topology, name)
    infos = await listing(store)
    task = tracker.task(f"objects {name}", total=len(infos))
    folder = root / "objects" / name
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    entries: list[ObjectEntry] = []
    for info in infos:
        assert store is not None
        path = folder / file_name(info.name, taken)
        try:
            with path.open("wb") as out:
                await store.get(info.name, writeinto=out)
        except ObjectNotFoundError:
            path.unlink()  # deleted since the listing: not part of this backup
            continue
        relative = path.relative_to(root).as_posix()
        entries.append(
            ObjectEntry(info.name, relative, path.stat().st_size, info.description, info.headers)
        )
        task.advance()
    return entries


def new_directory(root: Path) -> None:
    """A backup never mixes with other files: the directory is new or empty."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise CliError(f"{root} exists and is not an empty directory; choose a new one", 2)
    root.mkdir(parents=True, exist_ok=True)


async def backup(nc: Client, topology: Topology, root: Path, tracker: Tracker) -> Manifest:
    new_directory(root)
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    states = await stream_states(nc.jetstream(), topology)
    last_seq = {key: state.last_seq for key, state in states.items()}
    with (root / EVENTS).open("wb") as out:
        events = await export_events(nc, topology, out, tracker, until=last_seq)
    objects = {name: await save_bucket(nc, topology, name, root, tracker) for name in BUCKETS}
    files = {EVENTS: sha256_of(root / EVENTS)}
    for entries in objects.values():
        for entry in entries:
            files[entry.file] = sha256_of(root / entry.file)
    manifest = Manifest(VERSION, topology.prefix, created, events, last_seq, objects, files)
    partial = root / f"{MANIFEST}.partial"
    partial.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    partial.rename(root / MANIFEST)
    return manifest
