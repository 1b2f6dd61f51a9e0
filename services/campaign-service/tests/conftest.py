"""The campaign-service in the test's process, on a real nats-server and Postgres.

`harness.start()` runs one replica (projection runners, scheduler, completion, adoption,
command handling, durable consumers); start two for races. The clock is a controlled
clock the test moves (`harness.advance`). Other owners' events (tenants, devices, message
outcomes) are appended directly, as their services would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.campaign_service.adapters.fetch import Resolver, system_resolver
from wacast.campaign_service.service import CampaignService
from wacast.campaign_service.settings import Settings
from wacast.contracts import commands as cmd
from wacast.contracts.base import Command, Event, Reply
from wacast.contracts.devices import DeviceConnected, DeviceRegistered
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadCreated, LeadPhoneClaimed
from wacast.contracts.messages import MessageRequested
from wacast.contracts.streams import BY_KIND, MESSAGES, StreamSpec, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantCreated
from wacast.runtime.clock import CONTROLLED_EPOCH, ControlledClock
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.testing import until_answering

T = TypeVar("T")
TENANT = "acme"
FAST = {
    "completion_check_seconds": 0.2,
    "adopt_seconds": 0.3,
    "progress_report_seconds": 60.0,
    "receipt_window_seconds": 3600.0,
}


class Replica:
    def __init__(self, service: CampaignService, broker: NatsBroker, task: asyncio.Task[None]):
        self.service = service
        self.broker = broker
        self.task = task

    async def send(self, command: Command) -> Reply:
        return await self.service.handle(command)

    async def stop(self) -> None:
        """Abrupt, like a crash: background work is cancelled wherever it is. Bounded: a
        replica that does not stop fails the test instead of hanging the suite."""
        self.task.cancel()
        stopping = asyncio.ensure_future(self.broker.stop())
        _, late = await asyncio.wait({self.task, stopping}, timeout=15)
        if late:
            stuck = [
                t for t in asyncio.all_tasks() if not t.done() and t is not asyncio.current_task()
            ]
            where = [f"{t.get_coro()!r} at {t.get_stack(limit=3)}" for t in stuck]
            raise AssertionError("the replica did not stop:\n" + "\n".join(where))


class Harness:
    def __init__(
        self,
        nc: Client,
        topology: Topology,
        pool: asyncpg.Pool,
        nats_url: str,
        dead_letters: DeadLetters,
    ) -> None:
        self.nc = nc
        self.topology = topology
        self.pool = pool
        self.nats_url = nats_url
        self.dead_letters = dead_letters
        self.store = EventStore(nc, topology)
        self.clock = ControlledClock(CONTROLLED_EPOCH)
        self.replicas: list[Replica] = []

    async def start(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
        **overrides: Any,
    ) -> Replica:
        settings = Settings(
            namespace=self.topology.prefix, clock="controlled", **{**FAST, **overrides}
        )
        service = CampaignService(
            nc=self.nc,
            pool=self.pool,
            topology=self.topology,
            clock=self.clock,
            settings=settings,
            dead_letters=self.dead_letters,
            transport=transport,
            resolver=resolver,
        )
        await service.prepare()
        broker = NatsBroker(self.nats_url)
        service.register(broker)
        await broker.start()
        await until_answering(self.nc, self.topology.command("campaigns", "Probe"))
        replica = Replica(service, broker, asyncio.create_task(service.run()))
        self.replicas.append(replica)
        return replica

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.stop()
        try:
            await asyncio.wait_for(self.pool.close(), 10)
        except TimeoutError:
            self.pool.terminate()
            raise AssertionError("a connection of the service's pool was never released") from None

    async def advance(self, by: timedelta) -> None:
        await self.clock.set(self.clock.now() + by)

    # other owners' events -------------------------------------------------------------
    async def append(self, event: Event) -> int:
        subject = event.subject(self.topology)
        spec = BY_KIND[event.subject_kind]
        seq = await self.store.last_seq(spec, subject)
        done = await self.store.append(subject, [event], msg_id=f"{subject}.{seq}", expected=seq)
        return done.seq

    async def tenant(self, region: str = "US", tenant_id: str = TENANT) -> None:
        await self.append(
            TenantCreated(
                tenant_id=tenant_id,
                occurred_at=self.clock.now(),
                name=tenant_id,
                default_region=region,
            )
        )

    async def device(self, device_id: str, connected: bool = True, tenant_id: str = TENANT) -> None:
        now = self.clock.now()
        await self.append(
            DeviceRegistered(
                tenant_id=tenant_id,
                occurred_at=now,
                device_id=device_id,
                name=device_id,
                driver="sim",
            )
        )
        if connected:
            await self.append(
                DeviceConnected(tenant_id=tenant_id, occurred_at=now, device_id=device_id)
            )

    async def leads(self, replica: Replica, count: int, **fields: Any) -> list[str]:
        """`count` leads with phones +1 415 555 xxxx (count <= 10000), created by command."""
        ids = []
        for i in range(count):
            reply = await replica.send(
                cmd.CreateLead(
                    tenant_id=TENANT, phone=f"+1415555{i:04d}", name=f"Lead {i}", **fields
                )
            )
            assert reply.ok, reply.problem
            ids.append(reply.id)
        return ids

    @staticmethod
    async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
        """`check()` once it is truthy; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout} s: last {result!r}")
            await asyncio.sleep(0.05)

    async def seed(
        self, count: int, devices: list[str], start: int = 0, **fields: Any
    ) -> list[str]:
        """`count` leads appended directly (claims and `LeadCreated`, in atomic batches), round
        robin over `devices`; ids `l000001`..., phones +1 415 555 0000... ."""
        ids: list[str] = []
        items: list[Append] = []
        now = self.clock.now()
        for n in range(start, start + count):
            lead_id, phone = f"l{n:06d}", f"+1415{5550000 + n:07d}"
            claim = LeadPhoneClaimed(
                tenant_id=TENANT,
                occurred_at=now,
                lead_id=lead_id,
                phone_key=phone_key(TENANT, phone),
            )
            created = LeadCreated(
                tenant_id=TENANT,
                occurred_at=now,
                lead_id=lead_id,
                phone=phone,
                name=f"Lead {n}",
                device_id=devices[n % len(devices)],
                **fields,
            )
            for event in (claim, created):
                items.append(
                    Append(
                        event.subject(self.topology),
                        event,
                        f"seed.{lead_id}.{event.subject_kind}",
                        0,
                    )
                )
            ids.append(lead_id)
            if len(items) >= 500:
                await self.store.append_batch(items)
                items = []
        if items:
            await self.store.append_batch(items)
        return ids

    # reading what happened ------------------------------------------------------------
    async def events(self, spec: StreamSpec, subject: str) -> list[Event]:
        return [s.event for s in await self.store.load(spec, subject)]

    async def subjects(self, spec: StreamSpec, pattern: str) -> dict[str, int]:
        """Message count per subject matching `pattern`."""
        js = self.nc.jetstream()
        info = await js.stream_info(spec.name(self.topology), subjects_filter=pattern)
        return dict(info.state.subjects or {})

    async def requests(self, tenant_id: str = TENANT) -> dict[str, int]:
        return await self.subjects(MESSAGES, f"{self.topology.prefix}.sendreq.*.{tenant_id}.>")

    async def request_events(self, tenant_id: str = TENANT) -> list[MessageRequested]:
        js = self.nc.jetstream()
        sub = await js.subscribe(
            f"{self.topology.prefix}.sendreq.*.{tenant_id}.>",
            stream=MESSAGES.name(self.topology),
            ordered_consumer=True,
        )
        found: list[MessageRequested] = []
        try:
            total = len(await self.requests(tenant_id))
            while len(found) < total:
                msg = await sub.next_msg(timeout=5)
                event = codec(MESSAGES).decode(msg.data)
                assert isinstance(event, MessageRequested)
                found.append(event)
        finally:
            await sub.unsubscribe()
        return found


@pytest.fixture
async def harness(
    nc: Client, streams: Topology, database_url: str, nats_url: str, dead_letters: DeadLetters
) -> AsyncIterator[Harness]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=12)
    assert pool is not None
    created = Harness(nc, streams, pool, nats_url, dead_letters)
    yield created
    await created.close()
