"""Sequences at scale: the sequence-service's memory with 100,000 active enrollments, and how
late due steps are requested when 10,000 of them fall due in the same minute.

Starts one durable nats-server and one durable Postgres in a temporary directory, and the
sequence-service as its own process (`python -m wacast.sequence_service`, controlled clock).
Seeds a tenant, devices and leads as the other owners would (atomic batches), creates two
sequences through the service's commands and enrolls every lead by filter: the due set in
a sequence whose first step comes an hour after enrollment (enrolled in ten slices six
controlled seconds apart, so their due times spread over one minute), the rest in one whose
first step is a month away. Then it moves the shared clock past that minute in one jump and
times, for each send request, its arrival on the bus after the jump. Prints one JSON object;
see bench/README.md.

    .venv/bin/python -m bench.sequences [--enrollments N] [--due N] [--out FILE] [--no-save]

`WACAST_BENCH_PROFILE=<file>` runs the service under cProfile into that file;
`WACAST_BENCH_KEEP_LOG=<file>` keeps the service's log there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import psutil
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench.output import options, print_and_save
from bench.servers import logs_shown_on_failure, servers, start_module
from bench.waiting import ready
from wacast.contracts.base import Event
from wacast.contracts.commands import CreateSequence, EnrollLeadsByFilter
from wacast.contracts.devices import DeviceConnected, DeviceRegistered
from wacast.contracts.leads import LeadCreated
from wacast.contracts.streams import DEVICES as DEVICES_STREAM
from wacast.contracts.streams import LEADS
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.contracts.values import Audience, MessageContent, Step
from wacast.runtime.clock import CONTROLLED_EPOCH, advance_clock
from wacast.runtime.commands import Requester
from wacast.runtime.embedded import free_port
from wacast.runtime.eventstore import MAX_BATCH, Append, EventStore
from wacast.runtime.provisioning import ensure_streams

TENANT = "acme"
DEVICES = 100
SLICES = 10
HOUR = 3600
T0 = CONTROLLED_EPOCH


async def seed(store: EventStore, topology: Topology, leads: int, due: int) -> None:
    """Tenant, devices (connected) and leads, as their owners would append them."""
    base: Any = {"tenant_id": TENANT, "occurred_at": T0}
    devices: list[Event] = []
    for n in range(DEVICES):
        devices += [
            DeviceRegistered(**base, device_id=f"d{n:03d}", name=f"desk {n}", driver="sim"),
            DeviceConnected(**base, device_id=f"d{n:03d}"),
        ]
    people: list[Event] = [
        LeadCreated(
            **base,
            lead_id=f"l{n:07d}",
            phone=f"+1415{n:07d}",
            name=f"Lead {n}",
            device_id=f"d{n % DEVICES:03d}",
            tags=["soon" if n < due else "later"],
        )
        for n in range(leads)
    ]
    for stream in ([TenantCreated(**base, name="Acme", timezone="UTC")], devices, people):
        for first in range(0, len(stream), MAX_BATCH):  # an atomic batch holds one stream
            chunk = stream[first : first + MAX_BATCH]
            await store.append_batch(
                [Append(e.subject(topology), e, f"seed.{id(e)}") for e in chunk]
            )


def start_service(
    nats_url: str, pg_url: str, namespace: str, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WACAST_NATS_URL": nats_url,
        "WACAST_DATABASE_URL": pg_url,
        "WACAST_NAMESPACE": namespace,
        "WACAST_CLOCK": "controlled",
        "WACAST_SEQUENCES_PORT": str(port),
        "WACAST_LOG_LEVEL": "WARNING",
    }
    profile = os.environ.get("WACAST_BENCH_PROFILE")  # a path: profile the service into it
    runner = ["-m", "cProfile", "-o", profile] if profile else []
    return start_module("wacast.sequence_service", env, log, *runner)


async def create(requester: Requester, sequence_id: str, delay: int) -> None:
    reply = await requester.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id=sequence_id,
            name=sequence_id,
            activate=True,
            steps=[
                Step(id="first", delay_seconds=delay, message=MessageContent(text="Hi {name}")),
                Step(id="second", delay_seconds=86_400, message=MessageContent(text="Again")),
            ],
        )
    )
    if not reply.ok:
        raise RuntimeError(f"CreateSequence refused: {reply.problem}")


async def enroll(requester: Requester, sequence_id: str, audience: Audience) -> int:
    reply = await requester.send(
        EnrollLeadsByFilter(tenant_id=TENANT, sequence_id=sequence_id, filter=audience)
    )
    if not reply.ok:
        raise RuntimeError(f"EnrollLeadsByFilter refused: {reply.problem}")
    return int(reply.data["enrolled"])


async def active_enrollments(pg_url: str) -> int:
    conn = await asyncpg.connect(pg_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM sequences_private.enrollments WHERE status = 'active'"
            )
            or 0
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def settle(nc: Client, topology: Topology, pg_url: str, enrollments: int) -> None:
    """Wait until the service's tables hold every enrollment as active and its consumers
    have worked off the seeded events (a backlog of 100,000 new leads is set-up, not the
    steady state whose due-step lag is measured)."""
    js = nc.jetstream()
    consumers = [(LEADS, "leads"), (DEVICES_STREAM, "devices")]
    while True:
        pending = 0
        for spec, name in consumers:
            info = await js.consumer_info(spec.name(topology), f"sequence-service-{name}")
            pending += (info.num_pending or 0) + (info.num_ack_pending or 0)
        if not pending and await active_enrollments(pg_url) >= enrollments:
            return
        await asyncio.sleep(0.5)


def rss_mb(proc: Any) -> float:
    return round(float(psutil.Process(proc.pid).memory_info().rss) / 2**20, 1)


def quantile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


async def measure(
    nc: Client, nats_url: str, pg_url: str, root: Path, enrollments: int, due: int
) -> dict[str, Any]:
    topology = Topology("bench")
    await ensure_streams(nc, topology)
    store = EventStore(nc, topology, timeout=30.0)
    requester = Requester(nc, topology, timeout=600.0)
    started = time.perf_counter()
    await seed(store, topology, enrollments, due)
    seed_s = time.perf_counter() - started

    port = free_port()
    proc = start_service(nats_url, pg_url, topology.prefix, port, root / "service.log")
    try:
        ready_s = await ready(port, proc)
        await create(requester, "soon", HOUR)
        await create(requester, "later", 30 * 86_400)
        started = time.perf_counter()
        devices = [f"d{n:03d}" for n in range(DEVICES)]
        enrolled = 0
        for part in range(SLICES):  # due times spread over one controlled minute
            ids = devices[part::SLICES]
            enrolled += await enroll(requester, "soon", Audience(tags=["soon"], device_ids=ids))
            await advance_clock(nc, topology, timedelta(seconds=60 / SLICES))
        enrolled += await enroll(requester, "later", Audience(tags=["later"]))
        enroll_s = time.perf_counter() - started
        await settle(nc, topology, pg_url, enrollments)
        settled_s = time.perf_counter() - started
        await asyncio.sleep(2.0)
        rss_active = rss_mb(proc)

        arrivals: list[float] = []
        ids_seen: set[str] = set()

        async def arrived(msg: Msg) -> None:
            arrivals.append(time.perf_counter())
            ids_seen.add(msg.subject.rsplit(".", 1)[1])

        sub = await nc.subscribe(f"{topology.prefix}.sendreq.>", cb=arrived)
        jumped = time.perf_counter()
        await advance_clock(nc, topology, timedelta(seconds=HOUR))
        peak = rss_active
        deadline = jumped + 600
        while len(arrivals) < due and time.perf_counter() < deadline:
            peak = max(peak, rss_mb(proc))
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything more would be a duplicate or a wrong step
        await sub.unsubscribe()
        rss_after = rss_mb(proc)
    finally:
        proc.terminate()
        proc.wait(30)
        if os.environ.get("WACAST_BENCH_KEEP_LOG"):
            shutil.copy(root / "service.log", os.environ["WACAST_BENCH_KEEP_LOG"])
    lags = [a - jumped for a in arrivals]
    return {
        "enrollments_active": enrollments,
        "due_in_one_minute": due,
        "rss_mb_with_active_enrollments": rss_active,
        "rss_mb_peak_while_firing": peak,
        "rss_mb_after_firing": rss_after,
        "due_lag_p50_s": quantile(lags, 50) if len(lags) > 1 else None,
        "due_lag_p99_s": quantile(lags, 99) if len(lags) > 1 else None,
        "due_lag_max_s": round(max(lags), 3) if lags else None,
        "due_requests_per_s": round(len(lags) / max(lags), 1) if lags else None,
        "requests_seen": len(arrivals),
        "distinct_message_ids": len(ids_seen),
        "enrolled_by_commands": enrolled,
        "enroll_per_s": round(enrolled / enroll_s, 1),
        "seconds": {
            "seed": round(seed_s, 1),
            "service_ready": round(ready_s, 1),
            "enroll_commands": round(enroll_s, 1),
            "enrolled_and_settled": round(settled_s, 1),
        },
    }


def run(enrollments: int, due: int) -> dict[str, Any]:
    with servers("wacast-bench-seq-") as up:

        async def go() -> dict[str, Any]:
            nc = await nats.connect(up.nats.url)
            try:
                return await measure(nc, up.nats.url, up.postgres.url(), up.root, enrollments, due)
            finally:
                await nc.drain()

        started = time.perf_counter()
        with logs_shown_on_failure(up.root / "service.log"):
            result = asyncio.run(go())
        result["seconds"]["total"] = round(time.perf_counter() - started, 1)
        result["machine"] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument("--enrollments", type=int, default=100_000, help="active enrollments")
    parser.add_argument("--due", type=int, default=10_000, help="of them due in one minute")
    args = parser.parse_args(argv)
    if not 0 < args.due <= args.enrollments:
        parser.error("--due must be between 1 and --enrollments")
    print_and_save("sequences", run(args.enrollments, args.due), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
