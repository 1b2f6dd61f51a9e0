"""Campaign fan-out and CSV import throughput of the campaign-service.

Starts one durable nats-server and one durable Postgres in a temporary directory and runs
the campaign-service in this process (`CampaignService`: projection runners, scheduler,
completion, jobs; no command subscriber needed). Then:

1. fan-out: `--leads` leads (default 100,000) are appended directly (phone claims and
   `LeadCreated`, spread over 20 connected devices); once the private lead projection has
   them, a campaign to all of them is triggered and timed from the trigger to its
   `CampaignFanoutCompleted`. Reported: send requests appended per second, and the growth
   of this process's resident memory (RSS, sampled every 20 ms) during the fan-out over
   its level just before the trigger (also: RSS when the service started, and its peak).
   `--leads 1000000` shows that memory stays bounded.
2. import: a CSV of `--import-rows` rows (default 100,000) is written to disk, streamed
   into the object store and imported with `ImportLeads` into another tenant with 10
   devices; timed from the command to `LeadImportCompleted`. Reported: rows per second.

Prints one JSON object; unless `--no-save`, also writes it to
`bench/results/campaigns-<timestamp>.json` (or `--out`).

    .venv/bin/python -m bench.campaigns [--leads N] [--import-rows N] [--out FILE] [--no-save]
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.client import Client

from bench.machine import machine, nats_server_version
from bench.output import note, options, print_and_save
from bench.seeding import append_leads
from bench.servers import servers
from wacast.campaign_service.service import CampaignService
from wacast.campaign_service.settings import Settings
from wacast.contracts import commands as cmd
from wacast.contracts.base import Event
from wacast.contracts.devices import DeviceConnected, DeviceRegistered
from wacast.contracts.leads import LeadImportCompleted
from wacast.contracts.messages import CampaignFanoutCompleted
from wacast.contracts.streams import LEADS, MEDIA_BUCKET, MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MessageContent
from wacast.runtime.clock import SystemClock
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.provisioning import ensure_streams
from wacast.runtime.service import connect_pool

AIMS = {"fanout_requests_per_s": 10_000.0, "fanout_rss_growth_mb_per_million": 100.0}
FANOUT_TENANT, IMPORT_TENANT = "bench", "importer"
MB = 1024 * 1024


class RssSampler:
    """Peak resident memory of this process while it runs."""

    def __init__(self, every: float = 0.02) -> None:
        self.process = psutil.Process()
        self.every = every
        self.peak = self.baseline = self.process.memory_info().rss
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self.peak = self.baseline = self.process.memory_info().rss
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.process.memory_info().rss)


async def append_all(store: EventStore, topology: Topology, events: Sequence[Event]) -> None:
    for event in events:
        await store.append(
            event.subject(topology),
            [event],
            msg_id=event.subject(topology) + type(event).__name__,
            expected=None,
        )


async def devices(store: EventStore, topology: Topology, tenant: str, count: int) -> list[str]:
    now = SystemClock().now()
    ids = [f"dev{n:03d}" for n in range(count)]
    for device_id in ids:
        await append_all(
            store,
            topology,
            [
                DeviceRegistered(
                    tenant_id=tenant,
                    occurred_at=now,
                    device_id=device_id,
                    name=device_id,
                    driver="sim",
                ),
                DeviceConnected(tenant_id=tenant, occurred_at=now, device_id=device_id),
            ],
        )
    return ids


def phone(n: int) -> str:
    return f"+1212{2010000 + n:07d}"


async def fanout(
    service: CampaignService, store: EventStore, topology: Topology, leads: int
) -> dict[str, Any]:
    at_start = psutil.Process().memory_info().rss
    device_ids = await devices(store, topology, FANOUT_TENANT, 20)
    seeding = time.perf_counter()
    await append_leads(
        store,
        topology,
        FANOUT_TENANT,
        leads,
        device_ids,
        SystemClock().now(),
        phone,
        attributes={"city": "Campinas"},
    )
    note(f"{leads} leads appended in {time.perf_counter() - seeding:.1f} s")
    await service.deps.reads.caught_up("LEADS", "DEVICES", timeout=3600)
    seeded = time.perf_counter() - seeding
    note(f"lead projection caught up after {seeded:.1f} s; fanning out")
    created = await service.handle(
        cmd.CreateCampaign(
            tenant_id=FANOUT_TENANT,
            name="bench",
            message=MessageContent(text="Hi {name|there}, see you in {attributes.city|town}!"),
        )
    )
    assert created.ok, created.problem
    with RssSampler() as rss:
        started = time.perf_counter()
        reply = await service.handle(
            cmd.TriggerCampaign(tenant_id=FANOUT_TENANT, campaign_id=created.id)
        )
        assert reply.ok, reply.problem
        await service.jobs.wait(("fanout", FANOUT_TENANT, created.id))
        seconds = time.perf_counter() - started
    note(f"fan-out done in {seconds:.1f} s")
    _, last = await service.deps.last(MESSAGES, topology.fanout(FANOUT_TENANT, created.id))
    assert isinstance(last, CampaignFanoutCompleted), last
    growth = (rss.peak - rss.baseline) / MB
    return {
        "leads": leads,
        "requests": last.requested,
        "seconds": round(seconds, 2),
        "requests_per_s": round(last.requested / seconds, 1),
        "rss_at_start_mb": round(at_start / MB, 1),
        "rss_before_mb": round(rss.baseline / MB, 1),
        "rss_peak_mb": round(rss.peak / MB, 1),
        "rss_peak_growth_mb": round(growth, 1),
        "seed_and_project_seconds": round(seeded, 1),
    }


async def import_csv(
    service: CampaignService,
    store: EventStore,
    nc: Client,
    topology: Topology,
    rows: int,
    workdir: Path,
) -> dict[str, Any]:
    await devices(store, topology, IMPORT_TENANT, 10)
    path = workdir / "leads.csv"
    with path.open("w") as out:
        out.write("name,phone,status,tags,city\n")
        for n in range(rows):
            out.write(f"Lead {n},{phone(n)},{'customer' if n % 3 == 0 else ''},fair;vip,Recife\n")
    obs = await nc.jetstream().object_store(topology.bucket(MEDIA_BUCKET))
    name = f"uploads/{IMPORT_TENANT}/bench.csv"
    with path.open("rb") as body:
        await obs.put(name, body)
    note(f"importing {rows} rows")
    started = time.perf_counter()
    reply = await service.handle(
        cmd.ImportLeads(tenant_id=IMPORT_TENANT, filename="bench.csv", object_name=name)
    )
    assert reply.ok, reply.problem
    await service.jobs.wait(("import", IMPORT_TENANT, reply.id))
    seconds = time.perf_counter() - started
    _, last = await service.deps.last(LEADS, topology.lead_import(IMPORT_TENANT, reply.id))
    assert isinstance(last, LeadImportCompleted), last
    return {
        "rows": last.rows,
        "created": last.created,
        "failed": last.failed,
        "bytes": path.stat().st_size,
        "seconds": round(seconds, 2),
        "rows_per_s": round(last.rows / seconds, 1),
    }


async def measure(
    nats_url: str, pg_url: str, leads: int, import_rows: int, workdir: Path
) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    pool = await connect_pool(pg_url, max_size=12)
    topology = Topology("wacast")
    try:
        await ensure_streams(nc, topology)
        store = EventStore(nc, topology)
        settings = Settings(namespace=topology.prefix, log_format="text")
        dead_letters = DeadLetters(nc, topology)
        service = CampaignService(
            nc=nc,
            pool=pool,
            topology=topology,
            clock=SystemClock(),
            settings=settings,
            dead_letters=dead_letters,
        )
        await service.prepare()
        background = asyncio.create_task(service.run())
        try:
            result = {"fanout": await fanout(service, store, topology, leads)}
            if import_rows:
                result["import"] = await import_csv(
                    service, store, nc, topology, import_rows, workdir
                )
        finally:
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)
        async with pool.acquire() as conn:
            pg_version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await pool.close()
        await nc.drain()
    result["aims"] = AIMS
    result["meets_aims"] = {
        "fanout_requests_per_s": result["fanout"]["requests_per_s"]
        >= AIMS["fanout_requests_per_s"],
        "fanout_rss_growth_mb_per_million": (
            leads >= 1_000_000
            and result["fanout"]["rss_peak_growth_mb"] <= AIMS["fanout_rss_growth_mb_per_million"]
        )
        if leads >= 1_000_000
        else None,
    }
    nats_server = await asyncio.to_thread(nats_server_version)
    result["machine"] = machine(nats_server=nats_server, postgres=pg_version)
    return result


def run(leads: int, import_rows: int) -> dict[str, Any]:
    with servers("wacast-bench-campaigns-") as up:
        started = time.perf_counter()
        result = asyncio.run(
            measure(up.nats.url, up.postgres.url("wacast"), leads, import_rows, up.root)
        )
        result["seconds"] = round(time.perf_counter() - started, 1)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument("--leads", type=int, default=100_000, help="audience of the fan-out")
    parser.add_argument(
        "--import-rows", type=int, default=100_000, help="rows of the CSV (0: skip)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("wacast.campaigns").setLevel(logging.INFO)
    if args.leads < 1 or args.import_rows < 0:
        parser.error("--leads must be at least 1 and --import-rows at least 0")
    print_and_save("campaigns", run(args.leads, args.import_rows), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
