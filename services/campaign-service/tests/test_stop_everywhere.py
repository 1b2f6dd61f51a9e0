"""A STOP after a sequence's first step: the lead gets nothing more from any sequence or
campaign. The campaign-service (keywords, opt-out, fan-out) and the sequence-service
(stop-on-reply, removal) run together in the test's process; the gateway is simulated by
appending what it would (`MessageSent`, `InboundMessageReceived`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg

from wacast.contracts import commands as cmd
from wacast.contracts import ids
from wacast.contracts.leads import LeadOptedOut
from wacast.contracts.messages import InboundMessageReceived, MessageRequested, MessageSent
from wacast.contracts.sequences import EnrollmentCompleted, EnrollmentRemoved
from wacast.contracts.streams import LEADS, SEQUENCES
from wacast.contracts.values import MessageContent, Step
from wacast.runtime.clock import ControlledClock, advance_clock
from wacast.runtime.commands import Requester
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.service import ServiceContext, make_broker
from wacast.sequence_service.app import setup
from wacast.sequence_service.settings import Settings

from .conftest import TENANT, Harness
from .test_campaigns import fanned_out


@asynccontextmanager
async def sequence_service(harness: Harness, database_url: str) -> AsyncIterator[None]:
    """The sequence-service, as its own tests run it (clock from the namespace's bucket)."""
    settings = Settings(
        nats_url=harness.nats_url,
        namespace=harness.topology.prefix,
        database_url=database_url,
        clock="controlled",
    )
    broker = make_broker(settings, "sequence-service")
    await broker.connect()
    nc = broker.connection
    clock = ControlledClock()
    await clock.follow(nc, harness.topology)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    assert pool is not None
    ctx: ServiceContext[Settings] = ServiceContext(
        name="sequence-service",
        settings=settings,
        topology=harness.topology,
        broker=broker,
        nc=nc,
        store=EventStore(nc, harness.topology),
        clock=clock,
        dead_letters=DeadLetters(nc, harness.topology),
        pool=pool,
    )
    await setup(ctx)
    await broker.start()
    tasks = [asyncio.create_task(work()) for work in ctx._background]
    try:
        await harness.eventually(ctx.checks["caught_up"], timeout=45)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await broker.stop()
        await clock.close()
        await pool.close()


async def advance(harness: Harness, by: timedelta) -> None:
    """Both services' clocks: the campaign harness's own, the bucket the other follows."""
    await harness.advance(by)
    await advance_clock(harness.nc, harness.topology, by)


async def sequence_requests(harness: Harness) -> list[MessageRequested]:
    return [r for r in await harness.request_events() if r.origin == "sequence"]


async def test_a_stop_after_the_first_step_stops_every_sequence_and_campaign(
    harness: Harness, database_url: str
) -> None:
    replica = await harness.start()
    await harness.tenant()
    await harness.device("d1")
    stopper, stays = await harness.seed(2, ["d1"])
    requester = Requester(harness.nc, harness.topology, timeout=20)
    async with sequence_service(harness, database_url):
        for sequence_id, steps in (
            ("welcome", [("first", 0), ("second", 3600)]),
            ("later", [("only", 1800)]),
        ):
            created = await requester.send(
                cmd.CreateSequence(
                    tenant_id=TENANT,
                    sequence_id=sequence_id,
                    name=sequence_id,
                    steps=[
                        Step(id=i, delay_seconds=d, message=MessageContent(text=f"{i} {{name}}"))
                        for i, d in steps
                    ],
                    stop_on_reply="ignore",  # only the opt-out stops it
                    activate=True,
                )
            )
            assert created.ok, created.problem
            enrolled = await requester.send(
                cmd.EnrollLeads(
                    tenant_id=TENANT, sequence_id=sequence_id, lead_ids=[stopper, stays]
                )
            )
            assert enrolled.ok, enrolled.problem

        async def first_steps() -> list[MessageRequested]:
            found = await sequence_requests(harness)
            return found if len(found) == 2 else []

        for request in await harness.eventually(first_steps, timeout=30):
            await harness.append(
                MessageSent(
                    tenant_id=TENANT,
                    occurred_at=harness.clock.now(),
                    message_id=request.message_id,
                    device_id=request.device_id,
                    lead_id=request.lead_id,
                    origin="sequence",
                    origin_id=request.origin_id,
                    wa_message_id=uuid.uuid4().hex,
                )
            )
        await advance(harness, timedelta(seconds=10))
        await harness.append(
            InboundMessageReceived(
                tenant_id=TENANT,
                occurred_at=harness.clock.now(),
                inbound_id=ids.inbound_id("d1", "wa-stop"),
                device_id="d1",
                lead_id=stopper,
                contact_key=ids.phone_key(TENANT, "+14155550000"),
                sender="+14155550000",
                text="Stop",
            )
        )

        async def opted_out() -> bool:
            events = await harness.events(LEADS, harness.topology.lead(TENANT, stopper))
            return isinstance(events[-1], LeadOptedOut)

        await harness.eventually(opted_out)

        async def stopper_out_of_both() -> list[str]:
            ended = [
                e.enrollment_id
                for e in await harness.events(SEQUENCES, harness.topology.all_of("enrollment"))
                if isinstance(e, EnrollmentRemoved | EnrollmentCompleted)
            ]
            mine = {ids.enrollment_id(s, stopper) for s in ("welcome", "later")}
            return sorted(mine) if mine <= set(ended) else []

        await harness.eventually(stopper_out_of_both, timeout=30)
        await advance(harness, timedelta(hours=2))

        async def the_other_leads_steps() -> list[MessageRequested]:
            found = [r for r in await sequence_requests(harness) if r.lead_id == stays]
            return found if len(found) == 3 else []

        await harness.eventually(the_other_leads_steps, timeout=30)
        campaign = await replica.send(
            cmd.CreateCampaign(tenant_id=TENANT, name="promo", message=MessageContent(text="Hi"))
        )
        await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign.id))
        done = await harness.eventually(lambda: fanned_out(harness, campaign.id))

    assert (done.requested, done.skipped) == (1, 1)
    to_stopper = [r for r in await harness.request_events() if r.lead_id == stopper]
    assert [(r.sequence_id, r.step_id) for r in to_stopper] == [("welcome", "first")]
