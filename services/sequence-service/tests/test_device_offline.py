"""Invariant 5: sequences send through the lead's device; offline pauses, reconnect resumes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from wacast.contracts import ids
from wacast.contracts.commands import CreateSequence, EnrollLeads
from wacast.contracts.leads import LeadDeviceAssigned
from wacast.contracts.sequences import EnrollmentPaused, EnrollmentResumed
from wacast.contracts.streams import DEVICES, LEADS
from wacast.contracts.values import MessageContent, Pacing, Step

from .conftest import TENANT, Harness

PACING = Pacing(min_seconds=15, max_seconds=45)


async def drip(harness: Harness) -> None:
    reply = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id="drip",
            name="Drip",
            activate=True,
            pacing=PACING,
            steps=[Step(id="one", delay_seconds=3600, message=MessageContent(text="One"))],
        )
    )
    assert reply.ok, reply.problem


async def test_offline_device_pauses_its_enrollments_and_reconnect_resumes_them_paced(
    service: Harness,
) -> None:
    await service.device("d2")
    for lead in ("l1", "l2", "l3"):
        await service.lead(lead, "d1")
    await service.lead("l4", "d2")
    await drip(service)
    leads = ["l1", "l2", "l3", "l4"]
    reply = await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="drip", lead_ids=leads))
    assert reply.data["enrolled"] == leads
    await service.online("d1", False)
    await service.settled(DEVICES)

    await service.advance(timedelta(hours=1))
    (other,) = await service.count(service.requests, 1, "the request through the online device")
    assert (other.lead_id, other.device_id) == ("l4", "d2")
    paused = await service.count(
        lambda: service.enrollment_events(EnrollmentPaused), 3, "pauses for the offline device"
    )
    assert {(p.reason, p.device_id) for p in paused} == {("device_offline", "d1")}
    await service.advance(timedelta(hours=5))
    await asyncio.sleep(0.5)
    assert len(await service.requests()) == 1, "nothing goes to an offline device"

    await service.online("d1", True)
    resumed = await service.count(
        lambda: service.enrollment_events(EnrollmentResumed), 3, "resumptions on reconnect"
    )
    assert {r.reason for r in resumed} == {"device_connected"}
    requests = await service.count(service.requests, 4, "the steps that fell due meanwhile")
    caught_up = [r for r in requests if r.device_id == "d1"]
    assert sorted(r.lead_id for r in caught_up) == ["l1", "l2", "l3"]
    # One send request per due step, each paced by the device's one lane (not sent in a
    # burst by this service): they carry the sequence's pacing and no earliest time.
    assert all(r.pacing == PACING and r.not_before is None for r in caught_up)
    assert {r.message_id for r in caught_up} == {
        ids.step_message_id(ids.enrollment_id("drip", lead), "one") for lead in ("l1", "l2", "l3")
    }


async def test_a_paused_lead_moved_to_an_online_device_resumes_there(service: Harness) -> None:
    await service.device("d2")
    await service.device("d3", online=False)
    await service.lead("l1", "d3")
    await drip(service)
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="drip", lead_ids=["l1"]))
    await service.advance(timedelta(hours=1))
    await service.count(lambda: service.enrollment_events(EnrollmentPaused), 1, "a pause")

    await service.append(
        LeadDeviceAssigned(
            tenant_id=TENANT,
            occurred_at=service.now,
            lead_id="l1",
            device_id="d2",
            previous_device_id="d3",
        )
    )
    await service.settled(LEADS)
    (request,) = await service.count(service.requests, 1, "the step through the new device")
    assert request.device_id == "d2"
