"""Campaigns end to end in one or two replicas: run once, fan out once, complete, finish."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from wacast.campaign_service.fanout import FIRST_BATCH, Fanout
from wacast.contracts import commands as cmd
from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.campaigns import (
    CampaignCompleted,
    CampaignCreated,
    CampaignFailed,
    CampaignFinished,
    CampaignTriggered,
)
from wacast.contracts.messages import (
    CampaignFanoutCompleted,
    MessageDelivered,
    MessageFailed,
    MessageRequested,
    MessageSent,
    SendsHeld,
    SendsReleased,
    SendsWithdrawn,
)
from wacast.contracts.streams import CAMPAIGNS, MESSAGES
from wacast.contracts.values import Audience, MessageContent

from .conftest import TENANT, Harness, Replica

HELLO = MessageContent(text="Hi {name|there}, {attributes.city|our city} misses you")


async def campaign(replica: Replica, **fields: object) -> str:
    reply = await replica.send(
        cmd.CreateCampaign(tenant_id=TENANT, name="March sale", message=HELLO, **fields)  # type: ignore[arg-type]
    )
    assert reply.ok, reply.problem
    return reply.id


async def fanned_out(harness: Harness, campaign_id: str) -> CampaignFanoutCompleted | None:
    _, last = await harness.replicas[-1].service.deps.last(
        MESSAGES, harness.topology.fanout(TENANT, campaign_id)
    )
    return last if isinstance(last, CampaignFanoutCompleted) else None


async def campaign_events(harness: Harness, campaign_id: str) -> list[type]:
    events = await harness.events(CAMPAIGNS, harness.topology.campaign(TENANT, campaign_id))
    return [type(e) for e in events]


async def test_two_replicas_triggering_at_once_run_the_campaign_once(harness: Harness) -> None:
    one, two = await harness.start(), await harness.start()
    await harness.device("d1")
    await harness.seed(120, ["d1"])
    campaign_id = await campaign(one)

    replies = await asyncio.gather(
        *(
            r.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))
            for r in (one, two, one, two)
        )
    )

    assert sum(r.ok for r in replies) == 1
    assert {r.problem.code for r in replies if r.problem} == {"already_triggered"}
    assert (await campaign_events(harness, campaign_id)).count(CampaignTriggered) == 1
    done = await harness.eventually(lambda: fanned_out(harness, campaign_id))
    assert done.requested == 120
    requests = await harness.requests()
    assert len(requests) == 120
    assert set(requests.values()) == {1}


async def test_a_redelivered_trigger_gets_the_first_reply(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.seed(3, ["d1"])
    campaign_id = await campaign(replica)
    trigger = cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id, idempotency_key="k1")

    first, again = await replica.send(trigger), await replica.send(trigger)

    assert first.ok, first.problem
    assert again.ok, again.problem
    assert (await campaign_events(harness, campaign_id)).count(CampaignTriggered) == 1


async def test_a_fan_out_killed_between_batches_resumes_without_sending_anything_twice(
    harness: Harness,
) -> None:
    first = await harness.start(fanout_batch_size=50)
    await harness.device("d1")
    await harness.device("d2")
    await harness.seed(400, ["d1", "d2"])
    campaign_id = await campaign(first)
    batches = 0
    stuck = asyncio.Event()
    send = Fanout._send

    async def send_then_hang(self: Fanout, *args: object) -> object:
        nonlocal batches
        if batches == 3:
            stuck.set()
            await asyncio.Event().wait()  # killed here, between two batches
        batches += 1
        return await send(self, *args)  # type: ignore[arg-type]

    first.service.fanout._send = send_then_hang.__get__(first.service.fanout)  # type: ignore[method-assign]
    assert (await first.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    await asyncio.wait_for(stuck.wait(), 15)
    await first.stop()
    # A small first batch so the first sends leave early, then full ones.
    assert len(await harness.requests()) == FIRST_BATCH + 50 + 50

    await harness.start(fanout_batch_size=50)

    done = await harness.eventually(lambda: fanned_out(harness, campaign_id))
    requests = await harness.requests()
    assert done.requested == 400
    assert len(requests) == 400
    assert set(requests.values()) == {1}


async def test_a_batch_holding_a_message_stored_already_is_retried_without_it(
    harness: Harness,
) -> None:
    replica = await harness.start(fanout_batch_size=20)
    await harness.device("d1")
    leads = await harness.seed(60, ["d1"])
    campaign_id = await campaign(replica)
    early = MessageRequested(
        tenant_id=TENANT,
        occurred_at=harness.clock.now(),
        message_id=ids.campaign_message_id(campaign_id, leads[25]),
        device_id="d1",
        lead_id=leads[25],
        origin="campaign",
        origin_id=campaign_id,
        to="+14155550025",
        content=MessageContent(text="sent by an earlier run"),
    )
    await harness.store.append(
        early.subject(harness.topology), [early], msg_id=early.message_id, expected=0
    )

    assert (await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok

    done = await harness.eventually(lambda: fanned_out(harness, campaign_id))
    requests = await harness.requests()
    assert done.requested == 60
    assert len(requests) == 60
    assert set(requests.values()) == {1}


async def test_a_campaign_with_no_connected_device_fails_at_once(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1", connected=False)
    await harness.seed(5, ["d1"])
    campaign_id = await campaign(replica)

    reply = await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))

    assert reply.problem is not None
    assert (reply.problem.code, reply.problem.status, reply.data["status"]) == (
        "no_connected_device",
        409,
        "failed",
    )
    assert await campaign_events(harness, campaign_id) == [CampaignCreated, CampaignFailed]
    assert await harness.requests() == {}


async def test_a_campaign_whose_audience_is_empty_fails_with_that_reason(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.seed(5, ["d1"], tags=["regular"])
    [vip] = await harness.seed(1, ["d1"], start=5, tags=["vip"])
    assert (await replica.send(cmd.OptOutLead(tenant_id=TENANT, lead_id=vip))).ok
    campaign_id = await campaign(replica, audience=Audience(tags=["vip"]))

    reply = await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))

    assert reply.problem is not None
    assert reply.problem.code == "empty_audience"
    [failed] = [
        e
        for e in await harness.events(CAMPAIGNS, harness.topology.campaign(TENANT, campaign_id))
        if isinstance(e, CampaignFailed)
    ]
    assert failed.reason == "empty_audience"


async def test_the_audience_is_frozen_at_the_trigger_and_rendered_per_lead(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.tenant()
    await harness.device("d1")
    campaign_id = await campaign(replica)
    ana = await replica.send(
        cmd.CreateLead(
            tenant_id=TENANT, phone="415 555 0101", name="Ana", attributes={"city": "Campinas"}
        )
    )
    nameless = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="415 555 0102"))

    assert (await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    late = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="415 555 0103", name="Late"))

    done = await harness.eventually(lambda: fanned_out(harness, campaign_id))
    requests = {r.lead_id: r for r in await harness.request_events()}
    assert done.requested == 2
    assert late.id not in requests
    assert requests[ana.id].content.text == "Hi Ana, Campinas misses you"
    assert requests[ana.id].to == "+14155550101"
    assert requests[nameless.id].content.text == "Hi there, our city misses you"


async def test_a_scheduled_campaign_triggers_when_the_clock_reaches_it_even_after_a_restart(
    harness: Harness,
) -> None:
    first = await harness.start()
    await harness.device("d1")
    await harness.seed(4, ["d1"])
    campaign_id = await campaign(first, schedule_at=harness.clock.now() + timedelta(hours=1))
    await harness.advance(timedelta(minutes=59))
    await asyncio.sleep(0.3)
    assert CampaignTriggered not in await campaign_events(harness, campaign_id)
    await first.stop()

    await harness.start()
    await harness.advance(timedelta(minutes=2))

    await harness.eventually(lambda: fanned_out(harness, campaign_id))
    [triggered] = [
        e
        for e in await harness.events(CAMPAIGNS, harness.topology.campaign(TENANT, campaign_id))
        if isinstance(e, CampaignTriggered)
    ]
    assert triggered.source == "schedule"


async def outcome(harness: Harness, request: MessageRequested, kind: type) -> None:
    event = kind(
        tenant_id=TENANT,
        occurred_at=harness.clock.now(),
        message_id=request.message_id,
        device_id=request.device_id,
        lead_id=request.lead_id,
        origin="campaign",
        origin_id=request.origin_id,
        **({"wa_message_id": "w" + request.message_id} if kind is MessageSent else {}),
        **({"reason": "not_on_whatsapp"} if kind is MessageFailed else {}),
    )
    await harness.append(event)


async def test_completion_follows_the_outcomes_and_finishing_the_receipt_window(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.seed(3, ["d1"])
    campaign_id = await campaign(replica)
    assert (await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    await harness.eventually(lambda: fanned_out(harness, campaign_id))
    a, b, c = await harness.request_events()

    for request, kind in ((a, MessageSent), (a, MessageDelivered), (b, MessageSent)):
        await outcome(harness, request, kind)
    await asyncio.sleep(0.5)
    assert CampaignCompleted not in await campaign_events(harness, campaign_id)
    await outcome(harness, c, MessageFailed)
    await outcome(harness, c, MessageFailed)  # repeated: counted once

    await harness.eventually(lambda: _has(harness, campaign_id, CampaignCompleted))
    await harness.advance(timedelta(minutes=30))
    await outcome(harness, b, MessageDelivered)
    await harness.advance(timedelta(minutes=31))
    finished = await harness.eventually(lambda: _has(harness, campaign_id, CampaignFinished))
    assert isinstance(finished, CampaignFinished)
    counts = finished.counts
    assert (counts.requested, counts.sent, counts.delivered, counts.failed) == (3, 2, 2, 1)


async def _has(harness: Harness, campaign_id: str, kind: type) -> object:
    events = await harness.events(CAMPAIGNS, harness.topology.campaign(TENANT, campaign_id))
    return next((e for e in events if isinstance(e, kind)), None)


async def test_beyond_the_running_limit_a_campaign_waits_and_runs_when_a_slot_frees(
    harness: Harness,
) -> None:
    replica = await harness.start(max_running_campaigns_per_tenant=1)
    await harness.device("d1")
    await harness.seed(2, ["d1"])
    first, second = await campaign(replica), await campaign(replica)
    assert (await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=first))).ok
    waiting = await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=second))
    assert waiting.ok, waiting.problem
    assert waiting.data == {"status": "pending", "queued": True}

    await harness.eventually(lambda: fanned_out(harness, first))
    for request in await harness.request_events():
        await outcome(harness, request, MessageSent)
    await harness.eventually(lambda: _has(harness, first, CampaignCompleted))

    await harness.eventually(lambda: fanned_out(harness, second))
    assert Counter(r.origin_id for r in await harness.request_events()) == {first: 2, second: 2}


async def test_pause_holds_resume_releases_and_cancel_withdraws_the_waiting_sends(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.seed(3, ["d1"])
    campaign_id = await campaign(replica)
    assert (await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    control = harness.topology.send_control(TENANT, "campaign", campaign_id)

    async def controls(count: int) -> list[Event]:
        found = await harness.events(MESSAGES, control)
        return found if len(found) >= count else []

    assert (await replica.send(cmd.PauseCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    await harness.eventually(lambda: controls(1))
    assert (await replica.send(cmd.ResumeCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    await harness.eventually(lambda: controls(2))
    assert (await replica.send(cmd.CancelCampaign(tenant_id=TENANT, campaign_id=campaign_id))).ok
    held, released, withdrawn = await harness.eventually(lambda: controls(3))

    assert isinstance(held, SendsHeld)
    assert isinstance(released, SendsReleased)
    assert isinstance(withdrawn, SendsWithdrawn)
    assert withdrawn.reason == "campaign_cancelled"
