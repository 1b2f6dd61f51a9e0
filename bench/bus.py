"""Throughput of the event bus: raw nats-py against the event store and projection runner.

Starts one durable nats-server (JetStream `sync_interval: always`) and one durable Postgres
in a temporary directory, measures, stops both and removes the directory. Prints one JSON
object; see bench/README.md for what each figure means.

    .venv/bin/python -m bench.bus [--events N] [--out FILE] [--no-save]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext

from bench.machine import machine, nats_server_version
from bench.output import options, print_and_save
from bench.servers import servers
from wacast.contracts.base import Event, encode
from wacast.contracts.devices import (
    DeviceConnected,
    DeviceDisconnected,
    DeviceEvent,
    DevicePaired,
    DeviceRegistered,
    DeviceRenamed,
)
from wacast.contracts.streams import DEVICES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.projection import DbConnection, Envelope, ProjectionRunner

AIMS: dict[str, float] = {
    "append_ratio": 0.6,
    "batch_append_ratio": 0.6,
    "projection_apply_per_s": 20000,
}
METRICS = (
    "raw_pipelined_publish_per_s",
    "raw_atomic_batch_per_s",
    "eventstore_append_per_s",
    "eventstore_batch_append_per_s",
    "append_ratio",
    "batch_append_ratio",
    "projection_apply_per_s",
)
T0 = datetime(2030, 1, 1, tzinfo=UTC)
TENANT = "acme"


@dataclass(frozen=True)
class Sizes:
    pipelined_events: int
    """Messages per pipelined (single publish) measurement per round: each is one disk write."""
    batch_events: int
    """Messages per atomic batch measurement per round."""
    window: int
    """Publishes in flight at once in the pipelined measurements."""
    batch: int
    """Messages per atomic batch."""
    rounds: int
    projection_events: int
    projection_batch: int

    @classmethod
    def scaled(cls, events: int) -> Sizes:
        batch = 500
        return cls(
            pipelined_events=max(512, events // 20),
            batch_events=max(batch * 2, events // 10 // batch * batch),
            window=512,
            batch=batch,
            rounds=3,
            projection_events=events,
            projection_batch=1000,
        )


# events ---------------------------------------------------------------------------


def registered(device_id: str, at: datetime) -> DeviceRegistered:
    return DeviceRegistered(
        tenant_id=TENANT, occurred_at=at, device_id=device_id, name=f"front desk {device_id}",
        driver="sim",
    )  # fmt: skip


def device_history(count: int) -> list[Event]:
    """`count` device events: devices go through registered, paired, connected, renamed and
    disconnected, interleaved over blocks of 1000 devices like a busy gateway's stream."""
    steps = 5
    events: list[Event] = []
    block = 1000
    devices = max(1, -(-count // steps))
    for first in range(0, devices, block):
        ids = [f"d{n:07d}" for n in range(first, min(devices, first + block))]
        for step in range(steps):
            for n, dev in enumerate(ids):
                if len(events) >= count:
                    return events
                at = T0 + timedelta(minutes=first + n, seconds=step)
                events.append(_step(step, dev, at))
    return events


def _step(step: int, dev: str, at: datetime) -> Event:
    if step == 0:
        return registered(dev, at)
    if step == 1:
        return DevicePaired(
            tenant_id=TENANT, occurred_at=at, device_id=dev, phone="+4915112345678",
            jid=f"4915112345678:{dev}@s.whatsapp.net", push_name="Front desk",
        )  # fmt: skip
    if step == 2:
        return DeviceConnected(tenant_id=TENANT, occurred_at=at, device_id=dev)
    if step == 3:
        return DeviceRenamed(tenant_id=TENANT, occurred_at=at, device_id=dev, name=f"desk {dev}")
    return DeviceDisconnected(tenant_id=TENANT, occurred_at=at, device_id=dev, reason="network")


# the projection -------------------------------------------------------------------

UPSERT = """
INSERT INTO devices AS d
    (device_id, tenant_id, name, driver, status, phone, jid, renames, registered_at,
     changed_at, last_seq)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::int[], $9::timestamptz[], $10::timestamptz[], $11::bigint[])
ON CONFLICT (device_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, d.name),
    driver = COALESCE(EXCLUDED.driver, d.driver),
    status = COALESCE(EXCLUDED.status, d.status),
    phone = COALESCE(EXCLUDED.phone, d.phone),
    jid = COALESCE(EXCLUDED.jid, d.jid),
    renames = d.renames + EXCLUDED.renames,
    registered_at = COALESCE(EXCLUDED.registered_at, d.registered_at),
    changed_at = EXCLUDED.changed_at,
    last_seq = EXCLUDED.last_seq
"""


class DeviceDirectory:
    """A realistic read model: one row per device, folded per batch, one upsert per batch."""

    name = "bench_devices"
    streams: Sequence[StreamSpec] = (DEVICES,)

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS devices ("
            " device_id text PRIMARY KEY, tenant_id text, name text, driver text, status text,"
            " phone text, jid text, renames int NOT NULL DEFAULT 0,"
            " registered_at timestamptz, changed_at timestamptz, last_seq bigint NOT NULL)"
        )

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        rows: dict[str, list[Any]] = {}
        for env in batch:
            event: DeviceEvent = env.event  # type: ignore[assignment]
            row = rows.get(event.device_id)
            if row is None:
                row = rows[event.device_id] = [
                    event.device_id, event.tenant_id, None, None, None, None, None, 0, None,
                    None, 0,
                ]  # fmt: skip
            if isinstance(event, DeviceRegistered):
                row[2], row[3], row[4], row[8] = event.name, event.driver, "new", env.occurred_at
            elif isinstance(event, DevicePaired):
                row[4], row[5], row[6] = "paired", event.phone, event.jid
            elif isinstance(event, DeviceConnected):
                row[4] = "connected"
            elif isinstance(event, DeviceDisconnected):
                row[4] = "disconnected"
            elif isinstance(event, DeviceRenamed):
                row[2] = event.name
                row[7] += 1
            row[9], row[10] = env.occurred_at, env.seq
        columns = list(zip(*rows.values(), strict=True))
        await conn.execute(UPSERT, *columns)


# measurements ---------------------------------------------------------------------


async def add_stream(js: JetStreamContext, topology: Topology) -> None:
    """The DEVICES stream of `topology`, configured exactly as provisioning does."""
    await js.add_stream(StreamConfig(**DEVICES.config(topology)))


@dataclass(frozen=True)
class Sample:
    per_s: float
    """Messages per second, wall clock."""
    cpu_us: float
    """CPU time of this (client) process per message, in microseconds."""


class Stopwatch:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def sample(self, count: int) -> Sample:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return Sample(count / wall, cpu * 1e6 / count)


async def pipelined(calls: Sequence[Callable[[], Awaitable[object]]], window: int) -> Sample:
    """Run `calls` with `window` in flight at a time."""
    watch = Stopwatch()
    for first in range(0, len(calls), window):
        await asyncio.gather(*(call() for call in calls[first : first + window]))
    return watch.sample(len(calls))


class Bench:
    def __init__(self, nc: Client, sizes: Sizes) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=10.0)
        self.sizes = sizes
        self.raw = Topology("benchraw")
        self.store_topology = Topology("benchstore")
        self.store = EventStore(nc, self.store_topology, timeout=10.0)
        self.payload = encode(registered("d0000000", T0))
        self._round = 0

    async def setup(self) -> None:
        await add_stream(self.js, self.raw)
        await add_stream(self.js, self.store_topology)

    def _devices(self, kind: str) -> list[str]:
        count = self.sizes.pipelined_events if kind == "p" else self.sizes.batch_events
        return [f"{kind}{self._round}x{n:07d}" for n in range(count)]

    async def raw_pipelined(self) -> Sample:
        js, payload = self.js, self.payload
        subjects = [self.raw.device(TENANT, d) for d in self._devices("p")]

        def call(subject: str) -> Callable[[], Awaitable[object]]:
            return lambda: js.publish(subject, payload)

        return await pipelined([call(s) for s in subjects], self.sizes.window)

    async def store_append(self) -> Sample:
        store = self.store
        devices = self._devices("p")
        items = [(self.store_topology.device(TENANT, d), registered(d, T0)) for d in devices]

        def call(subject: str, event: Event) -> Callable[[], Awaitable[object]]:
            return lambda: store.append(subject, [event], msg_id=f"m-{subject}", expected=0)

        return await pipelined([call(s, e) for s, e in items], self.sizes.window)

    async def raw_atomic_batch(self, *, store_headers: bool = False) -> Sample:
        """Atomic batches by hand; `store_headers` adds the message id and expected sequence
        the event store sends, to tell the cost of those headers from the store's own."""
        nc, payload, size = self.nc, self.payload, self.sizes.batch
        kind = "h" if store_headers else "b"
        subjects = [self.raw.device(TENANT, d) for d in self._devices(kind)]
        watch = Stopwatch()
        for first in range(0, len(subjects), size):
            chunk = subjects[first : first + size]
            batch_id = uuid.uuid4().hex
            last = len(chunk) - 1
            for i, subject in enumerate(chunk):
                headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i + 1)}
                if store_headers:
                    headers["Nats-Msg-Id"] = f"h-{subject}"
                    headers["Nats-Expected-Last-Subject-Sequence"] = "0"
                if i < last:
                    await nc.publish(subject, payload, headers=headers)
                else:
                    headers["Nats-Batch-Commit"] = "1"
                    reply = await nc.request(subject, payload, headers=headers, timeout=10.0)
                    ack = json.loads(reply.data)
                    if "error" in ack or ack.get("count") != len(chunk):
                        raise RuntimeError(f"atomic batch refused: {ack}")
        return watch.sample(len(subjects))

    async def store_batch_append(self) -> Sample:
        size = self.sizes.batch
        items = [
            Append(self.store_topology.device(TENANT, d), registered(d, T0), f"b-{d}", 0)
            for d in self._devices("b")
        ]
        watch = Stopwatch()
        for first in range(0, len(items), size):
            await self.store.append_batch(items[first : first + size])
        return watch.sample(len(items))

    async def rounds(self) -> dict[str, list[Sample]]:
        """Raw and store measurements interleaved, alternating which goes first."""
        found: dict[str, list[Sample]] = {
            "raw_pipelined_publish_per_s": [],
            "eventstore_append_per_s": [],
            "raw_atomic_batch_per_s": [],
            "eventstore_batch_append_per_s": [],
            "raw_atomic_batch_with_store_headers_per_s": [],
        }
        pairs: list[tuple[tuple[str, Callable[[], Awaitable[Sample]]], ...]] = [
            (
                ("raw_pipelined_publish_per_s", self.raw_pipelined),
                ("eventstore_append_per_s", self.store_append),
            ),
            (
                ("raw_atomic_batch_per_s", self.raw_atomic_batch),
                ("eventstore_batch_append_per_s", self.store_batch_append),
                (
                    "raw_atomic_batch_with_store_headers_per_s",
                    lambda: self.raw_atomic_batch(store_headers=True),
                ),
            ),
        ]
        for n in range(self.sizes.rounds):
            self._round = n
            for pair in pairs:
                for key, measure in pair if n % 2 == 0 else reversed(pair):
                    found[key].append(await measure())
        return found

    async def projection(self, pool: asyncpg.Pool) -> tuple[list[Sample], int]:
        """Store the history with atomic batches, then time `catch_up` over it from zero, once
        per round, each time into a fresh schema."""
        topology = Topology("benchproj")
        await add_stream(self.js, topology)
        store = EventStore(self.nc, topology, timeout=10.0)
        history = device_history(self.sizes.projection_events)
        items = [Append(e.subject(topology), e, f"h-{n}") for n, e in enumerate(history)]
        for first in range(0, len(items), self.sizes.batch):
            await store.append_batch(items[first : first + self.sizes.batch])
        samples: list[Sample] = []
        renamed = 0
        for n in range(self.sizes.rounds):
            schema = f"bench_{n}"
            runner = ProjectionRunner(
                DeviceDirectory(),
                pool=pool,
                nc=self.nc,
                topology=topology,
                schema=schema,
                dead_letters=DeadLetters(self.nc, topology),
                batch_size=self.sizes.projection_batch,
                idle_wait=0.5,
            )
            watch = Stopwatch()
            targets = await runner.catch_up()
            samples.append(watch.sample(len(history)))
            if targets[DEVICES.key] != len(history):
                raise RuntimeError(f"projection reached {targets}, expected {len(history)}")
            async with pool.acquire() as conn:
                rows = await conn.fetchval(f"SELECT count(*) FROM {schema}.devices")
                renamed = await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.devices WHERE renames = 1"
                )
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
            expected_rows = -(-len(history) // 5)
            if rows != expected_rows:
                raise RuntimeError(f"projection wrote {rows} devices, expected {expected_rows}")
        return samples, int(renamed)


# the run ----------------------------------------------------------------------------


async def measure(nats_url: str, pg_url: str, sizes: Sizes) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    try:
        bench = Bench(nc, sizes)
        await bench.setup()
        runs = await bench.rounds()
        projection, renamed = await bench.projection(pool)
        async with pool.acquire() as conn:
            pg_version = str(await conn.fetchval("SHOW server_version"))
        nats_server = nats_server_version() or str(nc.connected_server_version)
        info = machine(nats_server=nats_server, postgres=pg_version)
    finally:
        await pool.close()
        await nc.drain()
    figures: dict[str, float] = {
        key: statistics.median(s.per_s for s in samples) for key, samples in runs.items()
    }
    figures["append_ratio"] = (
        figures["eventstore_append_per_s"] / figures["raw_pipelined_publish_per_s"]
    )
    figures["batch_append_ratio"] = (
        figures["eventstore_batch_append_per_s"] / figures["raw_atomic_batch_per_s"]
    )
    figures["projection_apply_per_s"] = statistics.median(s.per_s for s in projection)
    result: dict[str, Any] = {key: round(figures[key], 3) for key in METRICS}
    result["aims"] = AIMS
    result["meets_aims"] = {key: result[key] >= aim for key, aim in AIMS.items()}
    with_headers = figures["raw_atomic_batch_with_store_headers_per_s"]
    result["diagnostics"] = {
        "raw_atomic_batch_with_store_headers_per_s": round(with_headers, 1),
        "batch_append_ratio_same_headers": round(
            figures["eventstore_batch_append_per_s"] / with_headers, 3
        ),
    }
    result["rounds"] = {key: [round(s.per_s, 1) for s in samples] for key, samples in runs.items()}
    result["rounds"]["projection_apply_per_s"] = [round(s.per_s, 1) for s in projection]
    cpu = {
        key.removesuffix("_per_s"): round(statistics.median(s.cpu_us for s in samples), 1)
        for key, samples in runs.items()
    }
    cpu["projection_apply"] = round(statistics.median(s.cpu_us for s in projection), 1)
    result["client_cpu_us_per_msg"] = cpu
    result["sizes"] = {
        "pipelined_events_per_measurement": sizes.pipelined_events,
        "batch_events_per_measurement": sizes.batch_events,
        "pipeline_window": sizes.window,
        "atomic_batch": sizes.batch,
        "rounds": sizes.rounds,
        "projection_events": sizes.projection_events,
        "projection_devices_renamed": renamed,
        "projection_batch": sizes.projection_batch,
    }
    result["machine"] = info
    return result


def run(sizes: Sizes) -> dict[str, Any]:
    with servers("wacast-bench-") as up:
        started = time.perf_counter()
        result = asyncio.run(measure(up.nats.url, up.postgres.url(), sizes))
        result["seconds"] = round(time.perf_counter() - started, 1)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument(
        "--events",
        type=int,
        default=100_000,
        help="events the projection replays; single publishes use N/20, atomic batches N/10",
    )
    args = parser.parse_args(argv)
    if args.events < 10:
        parser.error("--events must be at least 10")
    print_and_save("bus", run(Sizes.scaled(args.events)), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
