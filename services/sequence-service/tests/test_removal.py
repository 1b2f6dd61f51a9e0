"""Contact removal: by hand from one or every sequence, and when the lead or device goes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from wacast.contracts import ids
from wacast.contracts.commands import (
    CreateSequence,
    EnrollLeads,
    RemoveEnrollment,
    RemoveLeadFromSequences,
)
from wacast.contracts.devices import DeviceDeleted
from wacast.contracts.leads import LeadDeleted, LeadOptedOut
from wacast.contracts.messages import MessageRequested, SendsWithdrawn
from wacast.contracts.sequences import EnrollmentRemoved
from wacast.contracts.streams import MESSAGES
from wacast.contracts.values import MessageContent, Step

from .conftest import TENANT, Harness

TWO_STEPS = [
    Step(id="now", delay_seconds=0, message=MessageContent(text="Now")),
    Step(id="later", delay_seconds=3600, message=MessageContent(text="Later")),
]


async def create(harness: Harness, sequence_id: str) -> None:
    reply = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id=sequence_id,
            name=sequence_id,
            steps=TWO_STEPS,
            activate=True,
        )
    )
    assert reply.ok, reply.problem


async def withdrawals(harness: Harness) -> list[SendsWithdrawn]:
    return [e for e in await harness.events(MESSAGES, "sendctl") if isinstance(e, SendsWithdrawn)]


async def test_removal_stops_further_steps_and_withdraws_waiting_sends(service: Harness) -> None:
    await service.lead("l1")
    await service.lead("l2")
    await create(service, "s1")
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1", "l2"]))
    first = await service.count(service.requests, 2, "the first steps")

    reply = await service.send(RemoveEnrollment(tenant_id=TENANT, sequence_id="s1", lead_id="l1"))
    assert reply.ok, reply.problem
    (withdrawn,) = await withdrawals(service)
    assert (withdrawn.scope, withdrawn.scope_id) == ("enrollment", ids.enrollment_id("s1", "l1"))
    assert withdrawn.reason == "enrollment_removed"
    (removed,) = await service.enrollment_events(EnrollmentRemoved)
    assert removed.reason == "requested"

    for request in first:  # the gateway reports both as sent after all
        await service.sent(request)
    await service.advance(timedelta(hours=2))
    requests = await service.count(service.requests, 3, "the second step of the one left")
    await asyncio.sleep(0.5)
    requests = await service.requests()
    assert Counter(r.lead_id for r in requests) == {"l1": 1, "l2": 2}

    again = await service.send(RemoveEnrollment(tenant_id=TENANT, sequence_id="s1", lead_id="l1"))
    assert again.problem is not None
    assert (again.problem.status, again.problem.code) == (404, "not_enrolled")


async def test_leads_leave_every_sequence_when_they_opt_out_go_or_lose_their_device(
    service: Harness,
) -> None:
    await service.device("d2")
    for lead in ("optout", "deleted", "byhand", "stays"):
        await service.lead(lead, "d1")
    await service.lead("ondevice2", "d2")
    leads = ["optout", "deleted", "byhand", "stays", "ondevice2"]
    for sequence_id in ("s1", "s2"):
        await create(service, sequence_id)
        await service.send(EnrollLeads(tenant_id=TENANT, sequence_id=sequence_id, lead_ids=leads))
    await service.count(service.requests, 10, "the first steps")

    base = service.stamp()
    await service.append(
        LeadOptedOut(**base, lead_id="optout", reason="replied STOP", source="keyword"),
        LeadDeleted(**base, lead_id="deleted"),
        DeviceDeleted(**base, device_id="d2"),
    )
    reply = await service.send(RemoveLeadFromSequences(tenant_id=TENANT, lead_id="byhand"))
    assert reply.data == {"removed": 2}

    removed = await service.count(
        lambda: service.enrollment_events(EnrollmentRemoved), 8, "removals"
    )
    assert Counter(r.reason for r in removed) == {
        "opted_out": 2,
        "lead_deleted": 2,
        "device_deleted": 2,
        "requested": 2,
    }
    assert Counter(w.reason for w in await withdrawals(service)) == {
        "opted_out": 2,
        "lead_deleted": 2,
        "device_deleted": 2,
        "enrollment_removed": 2,
    }
    for request in await service.requests():
        await service.sent(request)
    await service.advance(timedelta(hours=2))
    await service.count(service.requests, 12, "the second steps of the lead that stays")
    await asyncio.sleep(0.5)
    later: list[MessageRequested] = [r for r in await service.requests() if r.step_id == "later"]
    assert sorted((r.lead_id, r.sequence_id) for r in later) == [("stays", "s1"), ("stays", "s2")]
