"""Rebuilding the report-service's read models: N stored events replayed into fresh tables.

Starts one durable nats-server and one durable Postgres in a temporary directory, appends a
realistic history (setup, not measured), then times the replays:

- `noop_replay_per_s`: the projection runner over the same streams with a projection that
  writes nothing (reading, decoding, checkpoint commits): the ceiling of any rebuild here;
- `rebuild_per_s`: `wacast.runtime.projection.rebuild` of the report-service's `reports`
  projection (what `wacast projections rebuild reports` runs), into a fresh schema;
- `rebuild_ratio`: `rebuild_per_s / noop_replay_per_s` (same run, same streams).

The history per lead: its phone claim and `LeadCreated` (LEADS); the send request, the
lane's `MessageAccepted` and `MessageDispatching`, and the outcomes `MessageSent`,
`MessageDelivered` and `MessageRead` (MESSAGES); 8 events. Plus one tenant, 100 devices
(registered, paired, connected) and 10 campaigns (created, triggered), each lead messaged by
one of them. CPU seconds of each process during the rebuild come from psutil; `--profile`
adds the top functions of a cProfile of the rebuild.

    .venv/bin/python -m bench.rebuild [--events N] [--profile] [--out FILE] [--no-save]
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
from nats.aio.client import Client

from bench.machine import load_average, machine, nats_server_version
from bench.output import options, print_and_save
from bench.process_usage import usage
from bench.profiling import top_by_own_time
from bench.seeding import append_in_batches
from bench.servers import servers
from wacast.contracts import messages as m
from wacast.contracts.base import Event
from wacast.contracts.campaigns import CampaignCreated, CampaignTriggered
from wacast.contracts.devices import DeviceConnected, DevicePaired, DeviceRegistered
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadCreated, LeadPhoneClaimed
from wacast.contracts.streams import StreamSpec
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.contracts.values import Audience, MessageContent
from wacast.report_service.projections import SCHEMA, Reports
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.projection import DbConnection, Envelope, ProjectionRunner, rebuild
from wacast.runtime.provisioning import ensure_streams

TENANT = "bench"
DEVICES, CAMPAIGNS = 100, 10
PER_LEAD = 8
BLOCK = 500
"""Leads per block of history: their claims and leads, then each kind of message event."""
T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children (Postgres forks a backend per
    connection), live and reaped."""
    return usage(pid, children=True)[0]


class CpuWindow:
    """CPU seconds each named process spent between `__enter__` and `__exit__`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.used: dict[str, float] = {}
        self.wall = 0.0

    def __enter__(self) -> CpuWindow:
        self._before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self._started
        self.used = {
            name: round(cpu_seconds(pid) - self._before[name], 2) for name, pid in self.pids.items()
        }

    def report(self) -> dict[str, Any]:
        """CPU seconds per process, and the share of the machine's cores they used."""
        cores = os.cpu_count() or 1
        return {
            "wall_seconds": round(self.wall, 2),
            "cpu_seconds": self.used,
            "cpu_share_of_machine": round(sum(self.used.values()) / (self.wall * cores), 3),
        }


def setup_events() -> list[list[Event]]:
    """The tenant, its devices and its campaigns: one list per stream."""
    tenant: list[Event] = [TenantCreated(tenant_id=TENANT, occurred_at=T0, name="Bench Ltd")]
    devices: list[Event] = []
    campaigns: list[Event] = []
    for d in range(DEVICES):
        device_id = f"dev{d:03d}"
        devices += [
            DeviceRegistered(
                tenant_id=TENANT, occurred_at=T0, device_id=device_id, name=device_id, driver="sim"
            ),
            DevicePaired(
                tenant_id=TENANT, occurred_at=T0, device_id=device_id, phone=f"+1555{d:07d}",
                jid=f"1555{d:07d}@s.whatsapp.net",
            ),
            DeviceConnected(tenant_id=TENANT, occurred_at=T0, device_id=device_id),
        ]  # fmt: skip
    content = MessageContent(text="Hi {name|there}!")
    for c in range(CAMPAIGNS):
        campaign_id = f"camp{c:02d}"
        campaigns += [
            CampaignCreated(
                tenant_id=TENANT, occurred_at=T0, campaign_id=campaign_id, name=campaign_id,
                audience=Audience(), message=content,
            ),
            CampaignTriggered(
                tenant_id=TENANT, occurred_at=T0, campaign_id=campaign_id, trigger_id=campaign_id
            ),
        ]  # fmt: skip
    return [tenant, devices, campaigns]


def block(first: int, count: int) -> Iterator[list[Event]]:
    """The history of leads first..first+count, one list per kind of event."""
    leads = range(first, first + count)
    at = T0 + timedelta(seconds=first)

    def ids(n: int) -> tuple[str, str, str, str]:
        return f"l{n:08d}", f"dev{n % DEVICES:03d}", f"camp{n % CAMPAIGNS:02d}", f"m{n:08d}"

    claims: list[Event] = []
    created: list[Event] = []
    for n in leads:
        lead_id, device_id, _, _ = ids(n)
        phone = f"+1212{n:07d}"
        claims.append(
            LeadPhoneClaimed(
                tenant_id=TENANT, occurred_at=at, lead_id=lead_id,
                phone_key=phone_key(TENANT, phone),
            )
        )  # fmt: skip
        created.append(
            LeadCreated(
                tenant_id=TENANT, occurred_at=at, lead_id=lead_id, phone=phone,
                name=f"Lead {n}", device_id=device_id, tags=["fair"],
                attributes={"city": "Campinas"},
            )
        )  # fmt: skip
    yield claims + created
    content = MessageContent(text="Hi there!")
    common = [(n, *ids(n)) for n in leads]
    yield [
        m.MessageRequested(
            tenant_id=TENANT, occurred_at=at, message_id=msg, device_id=dev, lead_id=lead,
            origin="campaign", origin_id=camp, to=f"+1212{n:07d}", content=content,
        )
        for n, lead, dev, camp, msg in common
    ]  # fmt: skip
    yield [
        m.MessageAccepted(
            tenant_id=TENANT, occurred_at=at, device_id=dev, message_id=msg, lead_id=lead,
            origin="campaign", origin_id=camp, request_seq=n + 1,
        )
        for n, lead, dev, camp, msg in common
    ]  # fmt: skip
    yield [
        m.MessageDispatching(tenant_id=TENANT, occurred_at=at, device_id=dev, message_id=msg)
        for _, _, dev, _, msg in common
    ]
    for kind, delay in ((m.MessageSent, 1), (m.MessageDelivered, 2), (m.MessageRead, 5)):
        extra: dict[str, Any] = {"wa_message_id": "wa"} if kind is m.MessageSent else {}
        yield [
            kind(
                tenant_id=TENANT, occurred_at=at + timedelta(seconds=delay), message_id=msg,
                device_id=dev, lead_id=lead, origin="campaign", origin_id=camp, **extra,
            )
            for _, lead, dev, camp, msg in common
        ]  # fmt: skip


async def append(store: EventStore, topology: Topology, events: Sequence[Event], tag: str) -> None:
    """In atomic batches of up to 1000, in order (outcomes must follow their requests)."""
    items = [Append(e.subject(topology), e, f"{tag}.{i}", None) for i, e in enumerate(events)]
    await append_in_batches(store, items)


async def seed(nc: Client, topology: Topology, leads: int) -> int:
    store = EventStore(nc, topology, timeout=30)
    stored = 0
    for k, events in enumerate(setup_events()):
        await append(store, topology, events, f"setup.{k}")
        stored += len(events)
    for first in range(0, leads, BLOCK):
        for k, kind in enumerate(block(first, min(BLOCK, leads - first))):
            await append(store, topology, kind, f"b{first}.{k}")
            stored += len(kind)
    return stored


class Nothing:
    """The report projection's streams, applied to nothing."""

    name = "noop"
    streams: Sequence[StreamSpec] = Reports.streams

    async def migrate(self, conn: DbConnection) -> None:
        return None

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        return None


async def check(pool: asyncpg.Pool, leads: int) -> dict[str, int]:
    """The rebuilt tables hold every message, read, and the campaign counts add up."""
    async with pool.acquire() as conn:
        found = {
            "messages": await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.messages"),
            "messages_read": await conn.fetchval(
                f"SELECT count(*) FROM {SCHEMA}.messages WHERE status = 'read'"
            ),
            "campaign_count_total": await conn.fetchval(
                f"SELECT coalesce(sum(n), 0) FROM {SCHEMA}.campaign_counts"
            ),
            "leads": await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.leads"),
        }
    wrong = {k: v for k, v in found.items() if v != leads}
    if wrong:
        raise RuntimeError(f"the rebuilt tables do not hold {leads} of each: {wrong}")
    return {k: int(v) for k, v in found.items()}


async def measure(
    nats_url: str, pg_url: str, leads: int, pids: dict[str, int], profile: bool
) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    topology = Topology("benchrebuild")
    try:
        await ensure_streams(nc, topology)
        started = time.perf_counter()
        stored = await seed(nc, topology, leads)
        seeded = time.perf_counter() - started
        print(f"{stored} events stored in {seeded:.1f} s", file=sys.stderr, flush=True)
        dead = DeadLetters(nc, topology)
        noop = ProjectionRunner(
            Nothing(), pool=pool, nc=nc, topology=topology, schema="noop", dead_letters=dead
        )
        with CpuWindow(pids) as noop_cpu:
            await noop.catch_up()
        print(f"no-op replay: {noop_cpu.wall:.1f} s", file=sys.stderr, flush=True)
        profiler = cProfile.Profile() if profile else None
        with CpuWindow(pids) as cpu:
            if profiler is not None:
                profiler.enable()
            positions = await rebuild(
                Reports(), pool=pool, nc=nc, topology=topology, schema=SCHEMA, dead_letters=dead
            )
            if profiler is not None:
                profiler.disable()
        print(f"rebuild: {cpu.wall:.1f} s", file=sys.stderr, flush=True)
        rows = await check(pool, leads)
        replayed = sum(positions.values())
    finally:
        await pool.close()
        await nc.drain()
    result: dict[str, Any] = {
        "events": replayed,
        "rebuild_per_s": round(replayed / cpu.wall, 1),
        "noop_replay_per_s": round(replayed / noop_cpu.wall, 1),
        "rebuild_ratio": round(noop_cpu.wall / cpu.wall, 3),
        "rebuild_seconds": round(cpu.wall, 2),
        "noop_replay_seconds": round(noop_cpu.wall, 2),
        "events_per_stream": positions,
        "rows": rows,
        "cpu_during_rebuild": cpu.report(),
        "cpu_during_noop_replay": noop_cpu.report(),
        "seed_seconds": round(seeded, 1),
    }
    if profiler is not None:
        result["profile_top_by_own_time"] = top_by_own_time(profiler, 20)
    return result


def run(leads: int, profile: bool) -> dict[str, Any]:
    with servers("wacast-bench-rebuild-") as up:
        pids = {"bench": os.getpid(), **up.pids}
        started = time.perf_counter()
        result = asyncio.run(measure(up.nats.url, up.postgres.url(), leads, pids, profile))
        result["seconds"] = round(time.perf_counter() - started, 1)
        result["machine"] = machine(nats_server=nats_server_version(), load_average=load_average())
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events to store and replay (1,000,000)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the rebuild")
    args = parser.parse_args(argv)
    fixed = sum(len(events) for events in setup_events())
    leads = (args.events - fixed) // PER_LEAD
    if leads < 1:
        parser.error(f"--events must be at least {fixed + PER_LEAD}")
    print_and_save("rebuild", run(leads, args.profile), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
