"""The public API's numbers: a 100,000-message campaign report, and projection lag under load.

Starts a durable nats-server and Postgres in a temporary directory and the report-service
and api-gateway as their own processes (`python -m ...`, as `./dev up` runs them), seeds a
campaign through the real streams, then measures over HTTP as a client would:

- `report_p50_ms`, `report_p99_ms`: `GET /api/v1/campaigns/{id}/report` (per-device totals)
  of a campaign with N messages over 50 devices; also the campaign summary, the first page
  of its failed messages and of one device's messages, and the bare NATS query;
- `lag_p50_s`, `lag_p99_s`: while send lifecycles (requested, accepted, dispatching, sent,
  delivered) are appended at `--rate` events/s, the time from each batch's append
  acknowledgement to the moment the `reports` projection committed it (its checkpoint).

Prints one JSON object; saves it to `bench/results/api-<timestamp>.json` unless `--no-save`.

    .venv/bin/python -m bench.api [--messages 100000] [--rate 2000] [--seconds 20]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import nats
from nats.aio.client import Client

from bench.machine import machine
from bench.output import options, print_and_save
from bench.percentile import percentile
from bench.servers import logs_shown_on_failure, servers, start_module
from bench.waiting import ready
from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import messages as m
from wacast.contracts import queries as q
from wacast.contracts.base import Event
from wacast.contracts.ids import campaign_message_id
from wacast.contracts.streams import BY_KIND, MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Audience, MessageContent
from wacast.runtime.commands import Requester
from wacast.runtime.embedded import free_port, stop, wait_for_port
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.provisioning import ensure_streams

AIMS = {"report_p99_ms": 100.0, "lag_p99_s": 1.0}
TENANT = "bench"
DEVICES = 50
BATCH = 500
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
FAILURES = ("not_on_whatsapp", "timeout", "device_offline", "banned")


def at(n: int) -> datetime:
    return T0 + timedelta(milliseconds=n)


# seeding ------------------------------------------------------------------------------


class Seeder:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.topology = topology
        self.store = EventStore(nc, topology, timeout=30.0)
        self.count = 0
        self.ends: dict[str, int] = {}

    async def add(self, events: Sequence[Event]) -> None:
        for first in range(0, len(events), BATCH):
            chunk = events[first : first + BATCH]
            items = [Append(e.subject(self.topology), e, uuid.uuid4().hex) for e in chunk]
            done = await self.store.append_batch(items)
            self.ends[BY_KIND[chunk[-1].subject_kind].key] = done.seq
            self.count += len(chunk)

    async def devices(self) -> list[str]:
        ids = [f"dev{n:03d}" for n in range(DEVICES)]
        events: list[Event] = []
        for n, device in enumerate(ids):
            base: dict[str, Any] = {"tenant_id": TENANT, "occurred_at": at(n), "device_id": device}
            events += [
                d.DeviceRegistered(**base, name=f"Phone {n:03d}", driver="sim"),
                d.DevicePaired(**base, phone=f"+1555000{n:04d}", jid=f"{n}@s"),
                d.DeviceConnected(**base),
            ]
        await self.add(events)
        return ids

    async def campaign(self, campaign_id: str, leads: list[tuple[str, str]]) -> None:
        """Leads (id, device), the campaign, its send requests and their outcomes: 55 % read
        or delivered, 15 % sent, 20 % failed, 10 % still pending."""
        base: dict[str, Any] = {"tenant_id": TENANT, "occurred_at": T0}
        await self.add(
            [
                ld.LeadCreated(
                    **base, lead_id=lead, phone=f"+1666{n:07d}", name=f"Lead {n}", device_id=dev
                )
                for n, (lead, dev) in enumerate(leads)
            ]
        )
        await self.add(
            [
                c.CampaignCreated(
                    **base,
                    campaign_id=campaign_id,
                    name=campaign_id,
                    audience=Audience(),
                    message=MessageContent(text="Hi {name}"),
                ),
                c.CampaignTriggered(**base, campaign_id=campaign_id, trigger_id="t"),
            ]
        )
        requests: list[Event] = []
        outcomes: list[Event] = []
        for n, (lead, device) in enumerate(leads):
            who: dict[str, Any] = {
                "tenant_id": TENANT,
                "message_id": campaign_message_id(campaign_id, lead),
                "device_id": device,
                "lead_id": lead,
                "origin": "campaign",
                "origin_id": campaign_id,
            }
            requests.append(
                m.MessageRequested(
                    **who, occurred_at=at(n), to="+1", content=MessageContent(text=f"Hi {n}")
                )
            )
            kind = n % 20
            if kind < 11:
                outcomes.append(m.MessageSent(**who, occurred_at=at(n + 1), wa_message_id=f"w{n}"))
                outcomes.append(m.MessageDelivered(**who, occurred_at=at(n + 2)))
                if kind < 6:
                    outcomes.append(m.MessageRead(**who, occurred_at=at(n + 3)))
            elif kind < 14:
                outcomes.append(m.MessageSent(**who, occurred_at=at(n + 1), wa_message_id=f"w{n}"))
            elif kind < 18:
                reason = FAILURES[n % len(FAILURES)]
                outcomes.append(m.MessageFailed(**who, occurred_at=at(n + 1), reason=reason))
        await self.add(requests)
        await self.add(outcomes)


async def applied(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT stream, seq FROM reports.projection_checkpoints WHERE projection = 'reports'"
        )
    return {r["stream"]: int(r["seq"]) for r in rows}


async def caught_up(pool: asyncpg.Pool, ends: dict[str, int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_rows = await applied(pool)
        if all(with_rows.get(k, 0) >= v for k, v in ends.items()):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the projection did not reach {ends}")


# measuring ----------------------------------------------------------------------------


async def latencies(call: Callable[[], Awaitable[Any]], count: int) -> dict[str, float]:
    for _ in range(10):  # warm up connections and prepared statements
        await call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(max(samples), 2),
    }


async def lag_under_load(
    seeder: Seeder, pool: asyncpg.Pool, devices: list[str], rate: int, seconds: float
) -> dict[str, float]:
    """Append send lifecycles at `rate` events/s; lag = append ack to projection commit."""
    campaign_id = "load"
    await seeder.add(
        [
            c.CampaignCreated(
                tenant_id=TENANT,
                occurred_at=T0,
                campaign_id=campaign_id,
                name="load",
                audience=Audience(),
                message=MessageContent(text="x"),
            )
        ]
    )
    tick = 0.05
    per_tick = max(5, round(rate * tick / 5) * 5)
    acked: list[tuple[int, float]] = []
    lags: list[float] = []
    done = asyncio.Event()

    async def watch() -> None:
        waiting = 0
        while not done.is_set() or waiting < len(acked):
            position = (await applied(pool)).get(MESSAGES.key, 0)
            now = time.monotonic()
            while waiting < len(acked) and acked[waiting][0] <= position:
                lags.append(now - acked[waiting][1])
                waiting += 1
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    n = 0
    sent = 0
    while time.monotonic() - started < seconds:
        events: list[Event] = []
        for _ in range(per_tick // 5):
            lead, device = f"load{n}", devices[n % len(devices)]
            message_id = campaign_message_id(campaign_id, lead)
            base: dict[str, Any] = {"tenant_id": TENANT, "occurred_at": at(n)}
            who: dict[str, Any] = {"message_id": message_id, "lead_id": lead, "origin": "campaign"}
            events += [
                m.MessageRequested(
                    **base, **who, device_id=device, origin_id=campaign_id, to="+1",
                    content=MessageContent(text="x"),
                ),
                m.MessageAccepted(
                    **base, **who, device_id=device, origin_id=campaign_id, request_seq=1
                ),
                m.MessageDispatching(**base, device_id=device, message_id=message_id),
                m.MessageSent(
                    **base, **who, device_id=device, origin_id=campaign_id, wa_message_id="w"
                ),
                m.MessageDelivered(**base, **who, device_id=device, origin_id=campaign_id),
            ]  # fmt: skip
            n += 1
        items = [Append(e.subject(seeder.topology), e, uuid.uuid4().hex) for e in events]
        ack = await seeder.store.append_batch(items)
        acked.append((ack.seq, time.monotonic()))
        sent += len(items)
        next_tick = started + len(acked) * tick
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    elapsed = time.monotonic() - started
    done.set()
    await asyncio.wait_for(watcher, 120)
    return {
        "load_events_per_s": round(sent / elapsed, 1),
        "load_events": sent,
        "lag_p50_s": round(statistics.median(lags), 4),
        "lag_p99_s": round(percentile(lags, 0.99), 4),
        "lag_max_s": round(max(lags), 4),
    }


# the run ------------------------------------------------------------------------------


async def measure(
    nats_url: str, pg_url: str, api_port: int, messages: int, rate: int, seconds: float
) -> dict[str, Any]:
    topology = Topology(TENANT)
    nc = await nats.connect(nats_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        await ensure_streams(nc, topology)
        seeder = Seeder(nc, topology)
        devices = await seeder.devices()
        leads = [(f"lead{n:07d}", devices[n % DEVICES]) for n in range(messages)]
        seed_started = time.monotonic()
        await seeder.campaign("spring", leads)
        await caught_up(pool, seeder.ends)
        seed_seconds = time.monotonic() - seed_started
        key = os.environ["WACAST_DEV_API_KEY"]
        base = f"http://127.0.0.1:{api_port}/api/v1/campaigns/spring"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:

            def get(path: str, **params: str) -> Callable[[], Awaitable[Any]]:
                async def call() -> None:
                    response = await http.get(f"{base}{path}", params=params)
                    response.raise_for_status()

                return call

            report = await http.get(f"{base}/report")
            report.raise_for_status()
            totals = report.json()["totals"]
            figures = {
                "report": await latencies(get("/report"), 500),
                "summary": await latencies(get(""), 300),
                "failed_messages_page": await latencies(get("/messages", status="failed"), 300),
                "device_messages_page": await latencies(
                    get("/messages", device_id=devices[7]), 300
                ),
            }
        requester = Requester(nc, topology)

        async def nats_report() -> None:
            found = await requester.query(
                q.CAMPAIGN_REPORT, q.GetOne(tenant_id=TENANT, id="spring"), q.CampaignReport
            )
            assert isinstance(found, q.CampaignReport), found

        figures["report_nats_query"] = await latencies(nats_report, 500)
        lag = await lag_under_load(seeder, pool, devices, rate, seconds)
        async with pool.acquire() as conn:
            pg_version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await pool.close()
        await nc.drain()
    result: dict[str, Any] = {
        "report_p50_ms": figures["report"]["p50_ms"],
        "report_p99_ms": figures["report"]["p99_ms"],
        "lag_p50_s": lag["lag_p50_s"],
        "lag_p99_s": lag["lag_p99_s"],
        "latency_ms": figures,
        "lag": lag,
        "campaign": {"messages": messages, "devices": DEVICES, "totals": totals},
        "seed": {
            "events": seeder.count,
            "seconds": round(seed_seconds, 1),
            "appended_and_projected_per_s": round(seeder.count / seed_seconds, 1),
        },
        "aims": AIMS,
    }
    result["meets_aims"] = {key: result[key] <= aim for key, aim in AIMS.items()}
    result["machine"] = machine(postgres=pg_version)
    return result


def run(messages: int, rate: int, seconds: float) -> dict[str, Any]:
    with servers("wacast-bench-api-") as up:
        api_port, reports_port = free_port(), free_port()
        key = f"bench-{uuid.uuid4().hex}"
        env = {
            **os.environ,
            "WACAST_NATS_URL": up.nats.url,
            "WACAST_DATABASE_URL": up.postgres.url("wacast"),
            "WACAST_NAMESPACE": TENANT,
            "WACAST_API_PORT": str(api_port),
            "WACAST_REPORTS_PORT": str(reports_port),
            "WACAST_DEV_TENANT": TENANT,
            "WACAST_DEV_API_KEY": key,
            "WACAST_RATE_LIMIT_PER_SECOND": "0",
            "WACAST_LOG_LEVEL": "WARNING",
        }
        os.environ["WACAST_DEV_API_KEY"] = key
        wait_for_port(up.postgres.port, 30)
        logs = (up.root / "reports.log", up.root / "api.log")
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with logs_shown_on_failure(*logs, tail=3000):
                procs.append(start_module("wacast.report_service", env, logs[0]))
                procs.append(start_module("wacast.api_gateway", env, logs[1]))

                async def go() -> dict[str, Any]:
                    await ready(reports_port, timeout=60)
                    await ready(api_port, timeout=60)
                    return await measure(
                        up.nats.url, up.postgres.url("wacast"), api_port, messages, rate, seconds
                    )

                started = time.perf_counter()
                result = asyncio.run(go())
            result["seconds"] = round(time.perf_counter() - started, 1)
            return result
        finally:
            for proc in reversed(procs):
                stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages of the campaign")
    parser.add_argument("--rate", type=int, default=2000, help="events/s of the lag load")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs")
    args = parser.parse_args(argv)
    if args.messages < DEVICES or args.rate < 100 or args.seconds <= 0:
        parser.error(f"--messages >= {DEVICES}, --rate >= 100 and --seconds > 0")
    print_and_save("api", run(args.messages, args.rate, args.seconds), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
