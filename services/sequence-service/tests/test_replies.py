"""Stop-on-reply: what a lead writes ends, pauses or leaves alone its running enrollments.

The gateway is simulated by appending `InboundMessageReceived`, as it does for every message
a contact writes to a device.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Literal

from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.commands import CreateSequence, EnrollLeads, ResumeEnrollment
from wacast.contracts.messages import (
    InboundMessageReceived,
    MessageRequested,
    SendsHeld,
    SendsReleased,
    SendsWithdrawn,
)
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentPaused,
    EnrollmentResumed,
)
from wacast.contracts.streams import MESSAGES, SEQUENCES
from wacast.contracts.values import MessageContent, Step

from .conftest import TENANT, Harness

TWO_STEPS = [
    Step(id="first", delay_seconds=0, message=MessageContent(text="Hi {name}")),
    Step(id="second", delay_seconds=3600, message=MessageContent(text="Still there?")),
]


async def create(
    harness: Harness, sequence_id: str, on_reply: Literal["end", "pause", "ignore"]
) -> None:
    reply = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id=sequence_id,
            name=sequence_id,
            steps=TWO_STEPS,
            stop_on_reply=on_reply,
            activate=True,
        )
    )
    assert reply.ok, reply.problem


def written(
    lead_id: str, at: datetime, text: str = "thanks, tell me more"
) -> InboundMessageReceived:
    return InboundMessageReceived(
        tenant_id=TENANT,
        occurred_at=at,
        inbound_id=ids.inbound_id("d1", uuid.uuid4().hex),
        device_id="d1",
        lead_id=lead_id,
        contact_key=ids.phone_key(TENANT, "+14155550000"),
        sender="+14155550000",
        text=text,
    )


async def controls(harness: Harness) -> list[Event]:
    return await harness.events(MESSAGES, "sendctl")


async def replies_handled(harness: Harness) -> None:
    """Every inbound message stored so far was handled by the service's consumer."""
    js = harness.nc.jetstream()
    stream = MESSAGES.name(harness.topology)

    async def drained() -> bool:
        info = await js.consumer_info(stream, "sequence-service-replies")
        return not info.num_pending and not info.num_ack_pending

    await harness.until(drained, "the replies to be handled")


async def second_steps(harness: Harness) -> list[MessageRequested]:
    return [r for r in await harness.requests() if r.step_id == "second"]


async def test_a_reply_ends_the_enrollment_and_withdraws_what_waits(service: Harness) -> None:
    await service.lead("l1")
    await service.lead("l2")
    await create(service, "s1", "end")
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1", "l2"]))
    first = await service.count(service.requests, 2, "the first steps")

    await service.advance(timedelta(seconds=5))
    await service.append(
        written("l1", service.now),
        written("l2", service.now - timedelta(hours=1)),  # before it enrolled: no effect
    )

    (completed,) = await service.count(
        lambda: service.enrollment_events(EnrollmentCompleted), 1, "the enrollment to end"
    )
    assert (completed.enrollment_id, completed.reason) == (ids.enrollment_id("s1", "l1"), "reply")
    (withdrawn,) = await controls(service)
    assert isinstance(withdrawn, SendsWithdrawn)
    assert (withdrawn.scope_id, withdrawn.reason) == (completed.enrollment_id, "lead_replied")

    for request in first:  # the gateway sent both after all
        await service.sent(request)
    await service.advance(timedelta(hours=2))
    await service.count(lambda: second_steps(service), 1, "the second step of l2")
    assert [r.lead_id for r in await second_steps(service)] == ["l2"]


async def test_a_reply_pauses_the_enrollment_and_holds_its_step_until_resumed(
    service: Harness,
) -> None:
    await service.lead("l1")
    await create(service, "s1", "pause")
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    (first,) = await service.count(service.requests, 1, "the first step")
    await service.sent(first)
    await service.advance(timedelta(seconds=5))

    await service.append(written("l1", service.now))

    (paused,) = await service.count(
        lambda: service.enrollment_events(EnrollmentPaused), 1, "the pause"
    )
    assert paused.reason == "reply"
    (held,) = await controls(service)
    assert isinstance(held, SendsHeld)
    await service.advance(timedelta(hours=2))
    await service.settled(SEQUENCES)
    assert await second_steps(service) == []

    resumed = await service.send(ResumeEnrollment(tenant_id=TENANT, sequence_id="s1", lead_id="l1"))
    assert resumed.ok, resumed.problem
    await service.count(lambda: second_steps(service), 1, "the second step after resuming")
    assert [type(e) for e in await controls(service)] == [SendsHeld, SendsReleased]
    assert len(await service.enrollment_events(EnrollmentResumed)) == 1


async def test_a_reply_to_a_sequence_that_ignores_replies_changes_nothing(
    service: Harness,
) -> None:
    await service.lead("l1")
    await create(service, "s1", "ignore")
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    (first,) = await service.count(service.requests, 1, "the first step")
    await service.sent(first)
    await service.advance(timedelta(seconds=5))

    await service.append(written("l1", service.now))
    await replies_handled(service)
    await service.advance(timedelta(hours=2))

    await service.count(lambda: second_steps(service), 1, "the second step")
    assert await controls(service) == []
    assert await service.enrollment_events(EnrollmentPaused) == []
    assert await service.enrollment_events(EnrollmentCompleted) == []


async def test_a_reply_ends_every_running_enrollment_of_the_lead(service: Harness) -> None:
    await service.lead("l1")
    for sequence_id in ("s1", "s2"):
        await create(service, sequence_id, "end")
        await service.send(EnrollLeads(tenant_id=TENANT, sequence_id=sequence_id, lead_ids=["l1"]))
    await service.count(service.requests, 2, "the first steps")
    await service.advance(timedelta(seconds=5))

    await service.append(written("l1", service.now), written("l1", service.now))

    ended = await service.count(
        lambda: service.enrollment_events(EnrollmentCompleted), 2, "both enrollments to end"
    )
    assert Counter(e.sequence_id for e in ended) == {"s1": 1, "s2": 1}
    await replies_handled(service)
    assert len(await service.enrollment_events(EnrollmentCompleted)) == 2
    assert len(await controls(service)) == 2
