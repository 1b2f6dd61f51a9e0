"""Fixtures of the report-service tests: a live `reports` projection answering queries over
NATS, and a `History` that appends realistic events to the real streams."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import msgspec
import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import messages as m
from wacast.contracts import sequences as s
from wacast.contracts import tenants as tn
from wacast.contracts.base import Event, Reply
from wacast.contracts.ids import campaign_message_id
from wacast.contracts.streams import BY_KIND
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Audience, MessageContent, Step
from wacast.report_service.handlers import Reader
from wacast.report_service.projections import SCHEMA, Reports
from wacast.report_service.projections.schema import TABLES
from wacast.runtime.clock import ControlledClock
from wacast.runtime.commands import Requester
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.projection import ProjectionRunner

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
R = TypeVar("R", bound=msgspec.Struct)


class History:
    """Appends events the way their owners would, with event times that move forward."""

    def __init__(self, store: EventStore, topology: Topology, tenant: str = "acme") -> None:
        self.store = store
        self.topology = topology
        self.tenant = tenant
        self.now = T0
        self.last: dict[str, int] = {}

    def at(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    async def add(self, *events: Event) -> int:
        """Append `events` (one stream) in one atomic batch; returns the last sequence."""
        items = [Append(e.subject(self.topology), e, uuid.uuid4().hex) for e in events]
        seq = 0
        for start in range(0, len(items), 500):
            seq = (await self.store.append_batch(items[start : start + 500])).seq
        self.last[BY_KIND[events[-1].subject_kind].key] = seq
        return seq

    def base(self, tenant: str | None = None) -> dict[str, Any]:
        return {"tenant_id": tenant or self.tenant, "occurred_at": self.at()}

    async def tenant_created(self, tenant: str | None = None, tz: str = "UTC") -> int:
        tenant = tenant or self.tenant
        return await self.add(tn.TenantCreated(**self.base(tenant), name=tenant, timezone=tz))

    async def device(
        self, device_id: str, *, connected: bool = True, tenant: str | None = None
    ) -> int:
        b: dict[str, Any] = {"device_id": device_id}
        events: list[Event] = [
            d.DeviceRegistered(**self.base(tenant), **b, name=f"Phone {device_id}", driver="sim")
        ]
        if connected:
            events += [
                d.DevicePairingStarted(**self.base(tenant), **b, method="qr"),
                d.DevicePaired(**self.base(tenant), **b, phone="+15550001111", jid="j@s"),
                d.DeviceConnected(**self.base(tenant), **b),
            ]
        return await self.add(*events)

    async def leads(
        self, device_id: str, n: int, prefix: str = "l", tenant: str | None = None, **kw: Any
    ) -> int:
        return await self.add(
            *[
                ld.LeadCreated(
                    **self.base(tenant),
                    lead_id=f"{prefix}{i}",
                    phone=f"+1555{zlib.crc32(prefix.encode()) % 1000:03d}{i:04d}",
                    name=f"Lead {prefix}{i}",
                    device_id=device_id,
                    **kw,
                )
                for i in range(n)
            ]
        )

    async def campaign(self, campaign_id: str, tenant: str | None = None, **kw: Any) -> int:
        return await self.add(
            c.CampaignCreated(
                **self.base(tenant),
                campaign_id=campaign_id,
                name=f"Campaign {campaign_id}",
                audience=Audience(),
                message=MessageContent(text="Hi {name}"),
                **kw,
            ),
            c.CampaignTriggered(**self.base(tenant), campaign_id=campaign_id, trigger_id="t1"),
        )

    def request(
        self, campaign_id: str, lead_id: str, device_id: str, tenant: str | None = None
    ) -> m.MessageRequested:
        return m.MessageRequested(
            **self.base(tenant),
            message_id=campaign_message_id(campaign_id, lead_id),
            device_id=device_id,
            lead_id=lead_id,
            origin="campaign",
            origin_id=campaign_id,
            to="+15550000000",
            content=MessageContent(text=f"Hi {lead_id}"),
        )

    def outcome(
        self,
        kind: type[m.MessageOutcomeBase],
        campaign_id: str,
        lead_id: str,
        device_id: str,
        tenant: str | None = None,
        **kw: Any,
    ) -> Event:
        return kind(
            **self.base(tenant),
            message_id=campaign_message_id(campaign_id, lead_id),
            device_id=device_id,
            lead_id=lead_id,
            origin="campaign",
            origin_id=campaign_id,
            **kw,
        )

    def dispatching(self, campaign_id: str, lead_id: str, device_id: str) -> Event:
        return m.MessageDispatching(
            **self.base(), device_id=device_id, message_id=campaign_message_id(campaign_id, lead_id)
        )

    def cancelled(self, campaign_id: str, lead_id: str, device_id: str, reason: str) -> Event:
        return m.MessageCancelled(
            **self.base(),
            device_id=device_id,
            message_id=campaign_message_id(campaign_id, lead_id),
            lead_id=lead_id,
            origin="campaign",
            origin_id=campaign_id,
            reason=reason,
        )

    async def sequence(self, sequence_id: str, steps: int = 2) -> int:
        return await self.add(
            s.SequenceCreated(
                **self.base(),
                sequence_id=sequence_id,
                name=f"Drip {sequence_id}",
                steps=[
                    Step(id=f"s{i}", delay_seconds=60 * i, message=MessageContent(text=f"step {i}"))
                    for i in range(steps)
                ],
                status="active",
            )
        )


class LiveReports:
    """The projection running live, its queries served over NATS."""

    def __init__(
        self,
        runner: ProjectionRunner,
        requester: Requester,
        clock: ControlledClock,
        pool: asyncpg.Pool,
    ) -> None:
        self.runner = runner
        self.requester = requester
        self.clock = clock
        self.pool = pool

    async def ask(self, name: str, query: msgspec.Struct, response: type[R]) -> R:
        found = await self.requester.query(name, query, response)
        assert not isinstance(found, Reply), found
        return found

    async def problem(self, name: str, query: msgspec.Struct, response: type[R]) -> Reply:
        found = await self.requester.query(name, query, response)
        assert isinstance(found, Reply), found
        return found

    async def caught_up(self, history: History) -> None:
        for stream, seq in history.last.items():
            assert await self.runner.wait_until(stream, seq, timeout=10), stream


@pytest.fixture
def history(store: EventStore, streams: Topology) -> History:
    return History(store, streams)


@pytest.fixture
async def query_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(
        database_url, min_size=1, max_size=5, server_settings={"search_path": SCHEMA}
    )
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
async def reports(
    pool: asyncpg.Pool, query_pool: asyncpg.Pool, nc: Client, nats_url: str, streams: Topology
) -> AsyncIterator[LiveReports]:
    runner = ProjectionRunner(
        Reports(),
        pool=pool,
        nc=nc,
        topology=streams,
        schema=SCHEMA,
        dead_letters=DeadLetters(nc, streams),
        idle_wait=0.2,
    )
    await runner.prepare()
    clock = ControlledClock(T0 + timedelta(minutes=10))
    broker = NatsBroker(nats_url)
    Reader(query_pool, runner, clock, wait_seconds=5.0, receipt_window=timedelta(hours=1)).serve(
        broker, streams
    )
    await broker.start()
    task = asyncio.create_task(runner.run())
    yield LiveReports(runner, Requester(nc, streams, timeout=10), clock, query_pool)
    await stop_task(task)
    await asyncio.wait_for(broker.stop(), 10)


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel `task` until it ends: on Python 3.11 a cancellation that meets an
    `asyncio.timeout` expiring at the same moment can be swallowed (the runner then retries
    as after any failure), so one `cancel()` is not always enough."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


async def dump(pool: asyncpg.Pool, schema: str) -> dict[str, list[tuple[object, ...]]]:
    """Every table of `schema`, rows sorted, for comparing a rebuild with live tables."""
    found: dict[str, list[tuple[object, ...]]] = {}
    async with pool.acquire() as conn:
        for table in TABLES:
            rows = await conn.fetch(f'SELECT * FROM "{schema}".{table}')
            found[table] = sorted((tuple(r) for r in rows), key=repr)
    return found
