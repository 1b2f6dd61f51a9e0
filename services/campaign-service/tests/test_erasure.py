"""Erasure: nothing the campaign-service wrote or keeps holds an erased lead's phone."""

from __future__ import annotations

import uuid

from wacast.contracts import commands as cmd
from wacast.contracts import ids
from wacast.contracts.leads import LeadErased
from wacast.contracts.messages import InboundMessageReceived, MessageReplied, MessageSent
from wacast.contracts.streams import LEADS, MESSAGES
from wacast.contracts.values import MessageContent

from .conftest import TENANT, Harness
from .search import stored_with, tables_with
from .test_campaigns import fanned_out
from .test_imports import run_import

OLD, NEW = "4155550101", "4155550102"
"""The lead's first phone (imported) and the one it changed to (without the +1)."""


def inbound(lead_id: str, phone: str, text: str, harness: Harness) -> InboundMessageReceived:
    return InboundMessageReceived(
        tenant_id=TENANT,
        occurred_at=harness.clock.now(),
        inbound_id=ids.inbound_id("d1", uuid.uuid4().hex),
        device_id="d1",
        lead_id=lead_id,
        contact_key=ids.phone_key(TENANT, phone),
        sender=phone,
        text=text,
    )


async def test_an_erased_lead_leaves_its_phone_in_no_stream_and_no_table(
    harness: Harness, database_url: str
) -> None:
    replica = await harness.start()
    await harness.tenant()
    await harness.device("d1")
    [other] = await harness.seed(1, ["d1"])
    await harness.append(inbound("", f"+1{OLD}", "hi, who is this?", harness))  # not a lead yet
    await run_import(harness, replica, f"name,phone,city\nAnabela,+1 {OLD},Lisbon\n")
    [lead_id] = [
        i
        for i in (await harness.subjects(LEADS, f"{harness.topology.prefix}.lead.{TENANT}.*"))
        if not i.endswith(other)
    ]
    lead_id = lead_id.rsplit(".", 1)[-1]
    moved = await replica.send(cmd.UpdateLead(tenant_id=TENANT, lead_id=lead_id, phone=f"+1{NEW}"))
    assert moved.ok, moved.problem
    created = await replica.send(
        cmd.CreateCampaign(
            tenant_id=TENANT,
            name="sale",
            message=MessageContent(text="Hi {name} from {attributes.city}"),
        )
    )
    await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=created.id))
    await harness.eventually(lambda: fanned_out(harness, created.id))
    message_id = ids.campaign_message_id(created.id, lead_id)
    outcome = {
        "tenant_id": TENANT,
        "occurred_at": harness.clock.now(),
        "message_id": message_id,
        "device_id": "d1",
        "lead_id": lead_id,
        "origin": "campaign",
        "origin_id": created.id,
    }
    await harness.append(MessageSent(**outcome, wa_message_id="w1"))  # type: ignore[arg-type]
    await harness.append(MessageReplied(**outcome, text=f"Anabela, call {NEW}"))  # type: ignore[arg-type]
    await harness.append(inbound(lead_id, f"+1{NEW}", "Anabela here", harness))
    js = harness.nc.jetstream()
    await js.publish(
        harness.topology.inbound(TENANT, lead_id), f'{{"sender":"+1{NEW}"'.encode()
    )  # a poison message: dead-lettered with its bytes
    for kept in (OLD, NEW, "Anabela", "Lisbon"):
        assert await harness.eventually(lambda k=kept: stored_with(harness.nc, harness.topology, k))  # type: ignore[misc]

    erased = await replica.send(cmd.EraseLead(tenant_id=TENANT, lead_id=lead_id))

    assert erased.ok, erased.problem
    reads = replica.service.deps.reads
    await reads.caught_up("LEADS")
    await reads.caught_up("MESSAGES", projection="campaigns_outcomes")
    for personal in (OLD, NEW, "Anabela", "Lisbon"):
        assert await stored_with(harness.nc, harness.topology, personal) == [], personal
        schemas = ["campaigns_private", "campaigns_outcomes"]
        assert await tables_with(database_url, schemas, personal) == [], personal
    events = await harness.events(LEADS, harness.topology.lead(TENANT, lead_id))
    assert [type(e) for e in events] == [LeadErased]
    assert await stored_with(harness.nc, harness.topology, "+14155550000"), "others stay"
    again = await replica.send(cmd.EraseLead(tenant_id=TENANT, lead_id=lead_id))
    assert again.ok, again.problem
    assert await harness.events(MESSAGES, harness.topology.message(TENANT, message_id)) == []
