"""Leads: E.164 phones, one lead per tenant and phone, devices, consent, deletion, erasure."""

from __future__ import annotations

import asyncio

from wacast.contracts import commands as cmd
from wacast.contracts.devices import DeviceDeleted
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import (
    LeadCreated,
    LeadDeleted,
    LeadErased,
    LeadPhoneClaimed,
    LeadPhoneReleased,
)
from wacast.contracts.messages import SendsWithdrawn
from wacast.contracts.streams import LEADS, MESSAGES

from .conftest import TENANT, Harness


async def test_a_phone_is_stored_in_e164_read_with_the_tenants_region(harness: Harness) -> None:
    replica = await harness.start()
    await harness.tenant(region="BR")

    reply = await replica.send(
        cmd.CreateLead(tenant_id=TENANT, phone="(11) 98765-4321", name="Ana")
    )

    assert reply.ok, reply.problem
    assert reply.data["phone"] == "+5511987654321"
    [claim, created] = [
        *await harness.events(
            LEADS, harness.topology.lead_phone(TENANT, phone_key(TENANT, "+5511987654321"))
        ),
        *await harness.events(LEADS, harness.topology.lead(TENANT, reply.id)),
    ]
    assert isinstance(claim, LeadPhoneClaimed)
    assert isinstance(created, LeadCreated)
    assert created.phone == "+5511987654321"


async def test_an_invalid_phone_is_refused_with_the_reason(harness: Harness) -> None:
    replica = await harness.start()

    reply = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415"))

    assert reply.problem is not None
    assert (reply.problem.code, reply.problem.status) == ("invalid_phone", 422)
    assert "too short" in reply.problem.detail


async def test_one_lead_per_phone_even_when_created_at_once(harness: Harness) -> None:
    one, two = await harness.start(), await harness.start()
    await harness.tenant()

    replies = await asyncio.gather(
        one.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101")),
        two.send(cmd.CreateLead(tenant_id=TENANT, phone="(415) 555-0101")),
    )
    [created] = [r for r in replies if r.ok]
    [refused] = [r for r in replies if not r.ok]
    again = await one.send(cmd.CreateLead(tenant_id=TENANT, phone="415.555.0101"))

    for reply in (refused, again):
        assert reply.problem is not None
        assert (reply.problem.code, reply.problem.status) == ("lead_exists", 409)
        assert reply.problem.errors == [{"lead_id": created.id}]


async def test_a_lead_without_a_device_goes_to_the_device_with_fewest_leads(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.device("d2")
    await harness.seed(3, ["d1"])

    reply = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0199"))
    unknown = await replica.send(
        cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0198", device_id="d9")
    )

    assert reply.data["device_id"] == "d2"
    assert unknown.problem is not None
    assert (unknown.problem.code, unknown.problem.status) == ("unknown_device", 422)


async def test_changing_the_phone_moves_the_claim(harness: Harness) -> None:
    replica = await harness.start()
    lead = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101"))
    other = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0102"))

    taken = await replica.send(
        cmd.UpdateLead(tenant_id=TENANT, lead_id=lead.id, phone="+1 415 555 0102")
    )
    moved = await replica.send(
        cmd.UpdateLead(tenant_id=TENANT, lead_id=lead.id, phone="+1 415 555 0103")
    )
    reused = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101"))

    assert taken.problem is not None
    assert taken.problem.errors == [{"lead_id": other.id}]
    assert moved.ok, moved.problem
    assert reused.ok, reused.problem


async def test_deleting_a_device_deletes_its_leads_and_frees_their_phones(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.device("d2")
    leads = await harness.seed(6, ["d1", "d2"])
    on_d1 = leads[0::2]

    await harness.append(
        DeviceDeleted(tenant_id=TENANT, occurred_at=harness.clock.now(), device_id="d1")
    )

    async def deleted() -> bool:
        ends = [(await harness.events(LEADS, harness.topology.lead(TENANT, i)))[-1] for i in leads]
        return all(
            isinstance(e, LeadDeleted) == (i in on_d1) for i, e in zip(leads, ends, strict=True)
        )

    await harness.eventually(deleted)
    last = (await harness.events(LEADS, harness.topology.lead(TENANT, on_d1[0])))[-1]
    assert isinstance(last, LeadDeleted)
    assert last.reason == "device_deleted"
    claim = harness.topology.lead_phone(TENANT, phone_key(TENANT, "+14155550000"))
    assert isinstance((await harness.events(LEADS, claim))[-1], LeadPhoneReleased)
    again = await replica.send(
        cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0000", device_id="d2")
    )
    assert again.ok, again.problem


async def test_opting_out_withdraws_the_leads_waiting_sends(harness: Harness) -> None:
    replica = await harness.start()
    lead = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101"))

    first = await replica.send(cmd.OptOutLead(tenant_id=TENANT, lead_id=lead.id, reason="STOP"))
    again = await replica.send(cmd.OptOutLead(tenant_id=TENANT, lead_id=lead.id))

    assert first.ok
    assert again.ok
    assert again.data == {"changed": False}
    [withdrawn] = await harness.events(
        MESSAGES, harness.topology.send_control(TENANT, "lead", lead.id)
    )
    assert isinstance(withdrawn, SendsWithdrawn)
    assert withdrawn.reason == "opted_out"


async def test_erasing_a_lead_leaves_only_a_tombstone(harness: Harness) -> None:
    replica = await harness.start()
    lead = await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101", name="Ana"))

    erased = await replica.send(cmd.EraseLead(tenant_id=TENANT, lead_id=lead.id))

    assert erased.ok, erased.problem
    events = await harness.events(LEADS, harness.topology.lead(TENANT, lead.id))
    assert [type(e) for e in events] == [LeadErased]
    claim = harness.topology.lead_phone(TENANT, phone_key(TENANT, "+14155550101"))
    assert await harness.events(LEADS, claim) == []
    assert (await replica.send(cmd.CreateLead(tenant_id=TENANT, phone="+1 415 555 0101"))).ok
