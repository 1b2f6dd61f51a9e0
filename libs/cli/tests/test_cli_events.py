"""`wacast events export` / `import`: a round trip keeps every event; nothing is stored twice."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client

from wacast.cli.commands_common import CliError, Options
from wacast.cli.commands_events import export, import_file
from wacast.cli.commands_import import _append
from wacast.cli.export import export_events
from wacast.cli.progress import Tracker
from wacast.contracts.devices import DeviceRegistered, DeviceRenamed
from wacast.contracts.streams import BY_KEY, DEVICES, TENANTS, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.runtime.eventstore import Append, EventStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


async def drop(nc: Client, topology: Topology) -> None:
    js = nc.jetstream()
    prefixes = (topology.stream(""), f"KV_{topology.bucket('')}", f"OBJ_{topology.bucket('')}")
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(prefixes):
            await js.delete_stream(info.config.name)


@pytest_asyncio.fixture
async def fresh(nc: Client) -> AsyncIterator[Topology]:
    """A second, empty namespace to import into."""
    topology = Topology(f"f{uuid.uuid4().hex[:10]}")
    yield topology
    await drop(nc, topology)


def opts(nats_url: str, topology: Topology) -> Options:
    return Options(nats_url=nats_url, namespace=topology.prefix, database_url="", quiet=True)


async def write_history(store: EventStore, topology: Topology, devices: int = 30) -> int:
    items: list[Append] = []
    for d in range(devices):
        subject = topology.device("acme", f"dev{d}")
        at = T0 + timedelta(minutes=d)
        items.append(
            Append(
                subject,
                DeviceRegistered(
                    tenant_id="acme",
                    occurred_at=at,
                    device_id=f"dev{d}",
                    name=f"p{d}",
                    driver="sim",
                ),
                f"reg-{d}",
                headers={"traceparent": f"00-{d:032x}-{d:016x}-01"},
            )
        )
        items.append(
            Append(
                subject,
                DeviceRenamed(
                    tenant_id="acme", occurred_at=at, device_id=f"dev{d}", name="line\nbreak é"
                ),
                f"ren-{d}",
            )
        )
    for start in range(0, len(items), 17):
        await store.append_batch(items[start : start + 17])
    tenant = TenantCreated(tenant_id="acme", occurred_at=T0, name="Acme")
    await store.append(topology.tenant("acme"), [tenant], msg_id="t-acme", expected=0)
    return len(items) + 1


async def dump(nc: Client, topology: Topology) -> list[dict[str, object]]:
    """The export of a namespace, without the store times (they are the importer's)."""
    out = io.BytesIO()
    await export_events(nc, topology, out, Tracker(None))
    lines = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
    for line in lines:
        assert isinstance(line["time"], str)
        assert line["time"].endswith("Z")
        del line["time"]
    return lines


async def test_export_then_import_into_a_fresh_namespace_gives_the_same_events(
    nc: Client, store: EventStore, streams: Topology, fresh: Topology, nats_url: str, tmp_path: Path
) -> None:
    total = await write_history(store, streams)
    file = tmp_path / "events.jsonl"

    exported = await export(opts(nats_url, streams), str(file))
    imported = await import_file(opts(nats_url, fresh), str(file))

    assert sum(exported.values()) == sum(imported.values()) == total
    assert not file.with_name("events.jsonl.partial").exists()
    before, after = await dump(nc, streams), await dump(nc, fresh)
    assert after == before
    assert [line["stream"] for line in before] == ["DEVICES"] * (total - 1) + ["TENANTS"]
    first = before[0]
    assert first["subject"] == "device.acme.dev0"
    assert first["headers"] == {"traceparent": f"00-{0:032x}-{0:016x}-01"}
    # Same types and data, decoded with the stream's codec, in stream order.
    for source, target in zip(
        await store.load(DEVICES, streams.device("acme", "dev7")),
        await EventStore(nc, fresh).load(DEVICES, fresh.device("acme", "dev7")),
        strict=True,
    ):
        assert source.event == target.event
        assert source.seq == target.seq


async def test_importing_twice_stores_nothing_twice(
    nc: Client,
    store: EventStore,
    streams: Topology,
    fresh: Topology,
    nats_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    total = await write_history(store, streams, devices=3)
    file = tmp_path / "events.jsonl"
    await export(opts(nats_url, streams), str(file))
    await import_file(opts(nats_url, fresh), str(file))

    with pytest.raises(CliError, match="not empty") as refused:
        await import_file(opts(nats_url, fresh), str(file))
    assert refused.value.code == 3
    again = await import_file(opts(nats_url, fresh), str(file), force=True)

    assert sum(again.values()) == 0
    # Skipped by the ids stored in the target, not only by the server's duplicate window.
    assert f"{total} were there already" in capsys.readouterr().err
    info = await nc.jetstream().stream_info(DEVICES.name(fresh))
    assert info.state.messages == total - 1
    assert await dump(nc, fresh) == await dump(nc, streams)


async def test_a_batch_already_stored_within_the_window_is_skipped_one_by_one(
    store: EventStore, streams: Topology
) -> None:
    subject = f"{streams.prefix}.device.acme.d1"
    raw = msgspec.json.encode(
        DeviceRenamed(tenant_id="acme", occurred_at=T0, device_id="d1", name="x")
    )
    items = [
        Append(subject, msgspec.Raw(raw), f"import:DEVICES:{i}")  # type: ignore[arg-type]
        for i in range(1, 6)
    ]
    assert await _append(store, items[:3]) == 3
    assert await _append(store, items) == 2  # 1-3 are duplicates, 4-5 are new


async def test_a_malformed_line_is_reported_by_number_and_nothing_is_stored(
    nc: Client,
    store: EventStore,
    streams: Topology,
    fresh: Topology,
    nats_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await write_history(store, streams, devices=3)
    file = tmp_path / "events.jsonl"
    await export(opts(nats_url, streams), str(file))
    lines = file.read_bytes().splitlines()
    lines[2] = lines[2][:-5]  # truncated JSON
    lines[3] = lines[3].replace(b'"name":"line', b'"name":7,"x":"line')  # wrong type
    lines.append(b'{"stream":"NOPE","seq":1,"subject":"x.y","data":{}}')
    file.write_bytes(b"\n".join(lines) + b"\n")

    with pytest.raises(CliError, match="3 bad lines; nothing was imported") as failed:
        await import_file(opts(nats_url, fresh), str(file))

    assert failed.value.code == 2
    errors = capsys.readouterr().err
    assert "line 3: not an event line" in errors
    assert "line 4: data is not a valid DEVICES event" in errors
    assert "line 8: unknown stream 'NOPE'" in errors
    assert await dump(nc, fresh) == []


async def test_lines_out_of_order_or_of_the_wrong_stream_are_refused(
    fresh: Topology, nats_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = msgspec.json.encode(TenantCreated(tenant_id="a", occurred_at=T0, name="A")).decode()
    file = tmp_path / "events.jsonl"
    file.write_text(
        f'{{"stream":"TENANTS","seq":2,"subject":"tenant.a","data":{event}}}\n'
        f'{{"stream":"TENANTS","seq":2,"subject":"tenant.a","data":{event}}}\n'
        f'{{"stream":"DEVICES","seq":3,"subject":"tenant.a","data":{event}}}\n'
        f'{{"stream":"TENANTS","seq":4,"subject":"tenant.a","headers":{{"Nats-Msg-Id":"x"}},'
        f'"data":{event}}}\n'
    )
    with pytest.raises(CliError, match="3 bad lines"):
        await import_file(opts(nats_url, fresh), str(file))
    errors = capsys.readouterr().err
    assert "line 2: TENANTS seq 2 is not after 2" in errors
    assert "line 3: subject 'tenant.a' does not belong to DEVICES" in errors
    assert "line 4: header 'Nats-Msg-Id' is reserved" in errors


async def test_an_undecodable_stored_payload_survives_a_round_trip_on_request(
    nc: Client, streams: Topology, fresh: Topology, nats_url: str, tmp_path: Path
) -> None:
    js = nc.jetstream()
    await js.publish(streams.tenant("a"), b"\x00not json", headers={"Nats-Msg-Id": "p1"})
    file = tmp_path / "events.jsonl"
    await export(opts(nats_url, streams), str(file))
    assert b'"data_base64":"AG5vdCBqc29u"' in file.read_bytes()

    with pytest.raises(CliError, match="1 bad lines"):
        await import_file(opts(nats_url, fresh), str(file))
    await import_file(opts(nats_url, fresh), str(file), keep_undecodable=True)

    stored = await js.get_msg(TENANTS.name(fresh), seq=1)
    assert stored.data == b"\x00not json"


async def test_export_reads_a_large_stream_quickly(
    nc: Client, store: EventStore, streams: Topology, nats_url: str, fresh: Topology, tmp_path: Path
) -> None:
    event = TenantCreated(tenant_id="acme", occurred_at=T0, name="Acme")
    count = 20_000
    for start in range(0, count, 1000):
        await store.append_batch(
            [Append(streams.tenant(f"t{i}"), event, f"m{i}") for i in range(start, start + 1000)]
        )
    file = tmp_path / "big.jsonl"
    started = time.perf_counter()
    await export(opts(nats_url, streams), str(file))
    exported = time.perf_counter() - started
    started = time.perf_counter()
    await import_file(opts(nats_url, fresh), str(file))
    imported = time.perf_counter() - started

    assert len(file.read_bytes().splitlines()) == count
    assert exported < 10, exported
    assert imported < 20, imported
    assert codec(BY_KEY["TENANTS"]).decode(msgspec.json.encode(event)) == event
