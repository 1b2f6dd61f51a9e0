"""`wacast backup` / `restore`: streams and both object buckets come back byte for byte."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.cli.backup import MANIFEST, backup
from wacast.cli.commands_backup import restore
from wacast.cli.commands_common import CliError
from wacast.cli.export import export_events
from wacast.cli.progress import Tracker
from wacast.contracts.devices import DeviceRegistered
from wacast.contracts.streams import MEDIA_BUCKET, SESSIONS_BUCKET
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.runtime.eventstore import EventStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
NO_PROGRESS = Tracker(None)
OBJECTS = {
    MEDIA_BUCKET: {
        "acme/m1.jpg": os.urandom(300_000),  # several chunks
        "empty": b"",
        "..": b"dots",
        "ACME/M1.JPG": b"only the case differs",
    },
    SESSIONS_BUCKET: {"acme/dev1": os.urandom(5000), "acme/dev2": b"session two"},
}


async def drop(nc: Client, topology: Topology) -> None:
    js = nc.jetstream()
    prefixes = (topology.stream(""), f"KV_{topology.bucket('')}", f"OBJ_{topology.bucket('')}")
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(prefixes):
            await js.delete_stream(info.config.name)


@pytest_asyncio.fixture
async def fresh(nc: Client) -> AsyncIterator[Topology]:
    topology = Topology(f"f{uuid.uuid4().hex[:10]}")
    yield topology
    await drop(nc, topology)


async def fill(nc: Client, store: EventStore, topology: Topology) -> None:
    for d in range(5):
        event = DeviceRegistered(
            tenant_id="acme", occurred_at=T0, device_id=f"d{d}", name=f"n{d}", driver="sim"
        )
        await store.append(topology.device("acme", f"d{d}"), [event], msg_id=f"r{d}", expected=0)
    tenant = TenantCreated(tenant_id="acme", occurred_at=T0, name="Acme")
    await store.append(topology.tenant("acme"), [tenant], msg_id="t", expected=0)
    js = nc.jetstream()
    for bucket, objects in OBJECTS.items():
        store_ = await js.object_store(topology.bucket(bucket))
        for name, data in objects.items():
            await store_.put(name, data)


async def objects_of(nc: Client, topology: Topology, bucket: str) -> dict[str, bytes]:
    js = nc.jetstream()
    try:
        store = await js.object_store(topology.bucket(bucket))
        infos = await store.list(ignore_deletes=True)
    except NotFoundError:
        return {}
    return {info.name: (await store.get(info.name)).data or b"" for info in infos}


async def events_of(nc: Client, topology: Topology) -> list[tuple[object, ...]]:
    out = io.BytesIO()
    await export_events(nc, topology, out, NO_PROGRESS)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [(x["stream"], x["seq"], x["subject"], x["headers"], x["data"]) for x in lines]


async def test_backup_then_restore_into_a_fresh_namespace_restores_everything(
    nc: Client, store: EventStore, streams: Topology, fresh: Topology, tmp_path: Path
) -> None:
    await fill(nc, store, streams)
    root = tmp_path / "backup"

    manifest = await backup(nc, streams, root, NO_PROGRESS)
    outcome, objects = await restore(nc, fresh, root, NO_PROGRESS)

    assert manifest.events["DEVICES"] == 5
    assert manifest.namespace == streams.prefix
    assert sum(outcome.stored.values()) == 6
    assert objects == {MEDIA_BUCKET: 4, SESSIONS_BUCKET: 2}
    assert await events_of(nc, fresh) == await events_of(nc, streams)
    for bucket, expected in OBJECTS.items():
        assert await objects_of(nc, fresh, bucket) == expected
    written = msgspec.json.decode((root / MANIFEST).read_bytes())
    assert set(written["files"]) == {
        "events.jsonl",
        *(e["file"] for entries in written["objects"].values() for e in entries),
    }


async def test_a_tampered_backup_is_refused_before_anything_is_written(
    nc: Client, store: EventStore, streams: Topology, fresh: Topology, tmp_path: Path
) -> None:
    await fill(nc, store, streams)
    root = tmp_path / "backup"
    manifest = await backup(nc, streams, root, NO_PROGRESS)
    victim = root / manifest.objects[SESSIONS_BUCKET][0].file
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))

    with pytest.raises(CliError, match=r"damaged, nothing was written: .*checksum mismatch"):
        await restore(nc, fresh, root, NO_PROGRESS)

    assert await events_of(nc, fresh) == []
    with pytest.raises(NotFoundError):
        await nc.jetstream().stream_info(fresh.stream("DEVICES"))


async def test_a_changed_event_line_or_a_missing_file_is_refused(
    nc: Client, store: EventStore, streams: Topology, fresh: Topology, tmp_path: Path
) -> None:
    await fill(nc, store, streams)
    root = tmp_path / "backup"
    manifest = await backup(nc, streams, root, NO_PROGRESS)
    events = root / "events.jsonl"
    events.write_bytes(events.read_bytes().replace(b'"n1"', b'"n9"'))
    (root / manifest.objects[MEDIA_BUCKET][0].file).unlink()

    with pytest.raises(CliError, match="checksum mismatch") as refused:
        await restore(nc, fresh, root, NO_PROGRESS)
    assert "missing" in str(refused.value)
    assert await events_of(nc, fresh) == []


async def test_restore_into_a_namespace_that_is_not_empty_needs_force(
    nc: Client, store: EventStore, streams: Topology, tmp_path: Path
) -> None:
    await fill(nc, store, streams)
    root = tmp_path / "backup"
    await backup(nc, streams, root, NO_PROGRESS)

    with pytest.raises(CliError, match="is not empty") as refused:
        await restore(nc, streams, root, NO_PROGRESS)
    outcome, _ = await restore(nc, streams, root, NO_PROGRESS, force=True)

    assert refused.value.code == 3
    assert sum(outcome.stored.values()) == 6  # original appends carry no import ids
    assert outcome.skipped == 0


async def test_backup_refuses_a_directory_that_is_not_empty(
    nc: Client, streams: Topology, tmp_path: Path
) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(CliError, match="not an empty directory"):
        await backup(nc, streams, tmp_path, NO_PROGRESS)


async def test_a_directory_without_manifest_is_not_a_backup(
    nc: Client, fresh: Topology, tmp_path: Path
) -> None:
    with pytest.raises(CliError, match=r"manifest\.json is missing"):
        await restore(nc, fresh, tmp_path, NO_PROGRESS)


async def test_an_export_stops_at_the_sequences_recorded_at_the_start(
    nc: Client, store: EventStore, streams: Topology
) -> None:
    await fill(nc, store, streams)  # DEVICES 1-5, TENANTS 1
    out = io.BytesIO()

    counts = await export_events(nc, streams, out, NO_PROGRESS, until={"DEVICES": 3})

    assert counts["DEVICES"] == 3
    assert counts["TENANTS"] == 0
    assert [json.loads(x)["seq"] for x in out.getvalue().splitlines()] == [1, 2, 3]
