"""A sequence-service running in the test's process, and what the other owners would do.

The service runs with a controlled clock that follows the namespace's clock bucket, so
`advance` moves time for it; everything else is real (nats-server, Postgres, JetStream
consumers). Other owners' events (tenants, devices, leads, message outcomes) are appended
directly, as their services would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict, TypeVar

import asyncpg
import pytest
from nats.aio.client import Client

from wacast.contracts.base import Command, Event, Reply
from wacast.contracts.devices import DeviceConnected, DeviceDisconnected, DeviceRegistered
from wacast.contracts.leads import LeadCreated
from wacast.contracts.messages import MessageRequested, MessageSent
from wacast.contracts.sequences import SequenceEvent
from wacast.contracts.streams import MESSAGES, SEQUENCES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.runtime.clock import CONTROLLED_EPOCH, ControlledClock, advance_clock
from wacast.runtime.commands import Requester
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.service import ServiceContext, make_broker, stop_service
from wacast.sequence_service.app import setup
from wacast.sequence_service.settings import Settings

T = TypeVar("T")
TENANT = "acme"


class Stamp(TypedDict):
    """The fields every event another service appends here starts with."""

    tenant_id: str
    occurred_at: datetime


class Running:
    """One sequence-service instance; `stop` is an abrupt cancel, like a crash."""

    def __init__(self, ctx: ServiceContext[Settings], tasks: list[asyncio.Task[None]]) -> None:
        self.ctx = ctx
        self.tasks = tasks

    async def stop(self) -> None:
        assert await stop_service(self.ctx, self.tasks), "the service did not stop cleanly"


class Harness:
    def __init__(self, nc: Client, topology: Topology, nats_url: str, database_url: str) -> None:
        self.nc = nc
        self.topology = topology
        self.nats_url = nats_url
        self.database_url = database_url
        self.store = EventStore(nc, topology)
        self.requester = Requester(nc, topology, timeout=20)
        self.now = CONTROLLED_EPOCH
        self.running: Running | None = None

    # the service ------------------------------------------------------------------
    async def start(self, **overrides: Any) -> Running:
        settings = Settings(
            nats_url=self.nats_url,
            namespace=self.topology.prefix,
            database_url=self.database_url,
            clock="controlled",
            **overrides,
        )
        broker = make_broker(settings, "sequence-service")
        await broker.connect()
        nc = broker.connection
        clock = ControlledClock()
        await clock.follow(nc, self.topology)
        pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=10)
        assert pool is not None
        ctx: ServiceContext[Settings] = ServiceContext(
            name="sequence-service",
            settings=settings,
            topology=self.topology,
            broker=broker,
            nc=nc,
            store=EventStore(nc, self.topology),
            clock=clock,
            dead_letters=DeadLetters(nc, self.topology),
            pool=pool,
        )
        await setup(ctx)
        await broker.start()
        tasks = [asyncio.create_task(work()) for work in ctx._background]
        self.running = Running(ctx, tasks)
        await self.until(lambda: ctx.checks["caught_up"](), "the service to catch up")
        return self.running

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def send(self, command: Command) -> Reply:
        return await self.requester.send(command)

    # time ---------------------------------------------------------------------------
    async def advance(self, by: timedelta) -> datetime:
        self.now = await advance_clock(self.nc, self.topology, by)
        return self.now

    async def advance_to(self, when: datetime) -> datetime:
        return await self.advance(when - self.now)

    # other owners ----------------------------------------------------------------------
    async def append(self, *events: Event) -> int:
        seq = 0
        for event in events:
            appended = await self.store.append(
                event.subject(self.topology), [event], msg_id=uuid.uuid4().hex, expected=None
            )
            seq = appended.seq
        return seq

    def stamp(self) -> Stamp:
        """The tenant and the harness clock's now, for events of other owners."""
        return {"tenant_id": TENANT, "occurred_at": self.now}

    async def tenant(self, timezone: str = "UTC") -> None:
        await self.append(
            TenantCreated(tenant_id=TENANT, occurred_at=self.now, name="Acme", timezone=timezone)
        )

    async def device(self, device_id: str, *, online: bool = True) -> None:
        base = self.stamp()
        await self.append(
            DeviceRegistered(**base, device_id=device_id, name=device_id, driver="sim")
        )
        if online:
            await self.append(DeviceConnected(**base, device_id=device_id))

    async def online(self, device_id: str, online: bool) -> None:
        base = self.stamp()
        await self.append(
            DeviceConnected(**base, device_id=device_id)
            if online
            else DeviceDisconnected(**base, device_id=device_id, reason="network")
        )

    async def lead(self, lead_id: str, device_id: str = "d1", **fields: Any) -> None:
        await self.append(
            LeadCreated(
                tenant_id=TENANT,
                occurred_at=self.now,
                lead_id=lead_id,
                phone=f"+1415555{zlib.crc32(lead_id.encode()) % 10_000:04d}",
                name=fields.pop("name", lead_id.title()),
                device_id=device_id,
                **fields,
            )
        )

    async def sent(self, request: MessageRequested) -> None:
        """The gateway's report that a requested message went out (now)."""
        await self.append(
            MessageSent(
                tenant_id=TENANT,
                occurred_at=self.now,
                message_id=request.message_id,
                device_id=request.device_id,
                lead_id=request.lead_id,
                origin="sequence",
                origin_id=request.origin_id,
                wa_message_id=uuid.uuid4().hex,
            )
        )

    # reading back -----------------------------------------------------------------------
    async def events(self, spec: StreamSpec, kind: str) -> list[Event]:
        stored = await self.store.load(spec, self.topology.all_of(kind))
        return [s.event for s in stored]

    async def requests(self) -> list[MessageRequested]:
        return [
            e for e in await self.events(MESSAGES, "sendreq") if isinstance(e, MessageRequested)
        ]

    async def enrollment_events(self, kind: type[T]) -> list[T]:
        found: list[SequenceEvent] = await self.events(SEQUENCES, "enrollment")  # type: ignore[assignment]
        return [e for e in found if isinstance(e, kind)]

    async def settled(self, *specs: StreamSpec) -> None:
        """Wait until the service's private tables hold everything stored in `specs` now."""
        js = self.nc.jetstream()
        conn = await asyncpg.connect(self.database_url)
        try:
            for spec in specs:
                last = (await js.stream_info(spec.name(self.topology))).state.last_seq

                async def reached(key: str = spec.key, last: int = last) -> bool:
                    seq = await conn.fetchval(
                        "SELECT seq FROM sequences_private.projection_checkpoints "
                        "WHERE stream = $1",
                        key,
                    )
                    return int(seq or 0) >= last

                await self.until(reached, f"the private tables to reach {spec.key} {last}")
        finally:
            await conn.close()

    async def until(
        self,
        check: Callable[[], Awaitable[T | None]],
        what: str,
        timeout: float = 45.0,
    ) -> T:
        """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def count(
        self, check: Callable[[], Awaitable[list[Any]]], n: int, what: str
    ) -> list[Any]:
        async def enough() -> list[Any]:
            found = await check()
            return found if len(found) >= n else []

        return await self.until(enough, f"{n} {what}")


@pytest.fixture
async def harness(
    nc: Client, streams: Topology, nats_url: str, database_url: str
) -> AsyncIterator[Harness]:
    created = Harness(nc, streams, nats_url, database_url)
    yield created
    await created.stop()


@pytest.fixture
async def service(harness: Harness) -> Harness:
    """The harness with a service started, a tenant, and device `d1` online."""
    await harness.tenant()
    await harness.device("d1")
    await harness.start()
    return harness
