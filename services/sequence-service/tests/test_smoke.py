from __future__ import annotations

from datetime import timedelta

from wacast.contracts.commands import CreateSequence, EnrollLeads
from wacast.contracts.values import MessageContent, Step

from .conftest import TENANT, Harness


async def test_first_step_goes_out(service: Harness) -> None:
    await service.lead("l1")
    reply = await service.send(
        CreateSequence(
            tenant_id=TENANT,
            name="Onboarding",
            sequence_id="s1",
            activate=True,
            steps=[
                Step(id="hello", delay_seconds=0, message=MessageContent(text="Hi {name}")),
                Step(id="later", delay_seconds=3600, message=MessageContent(text="Again")),
            ],
        )
    )
    assert reply.ok, reply
    reply = await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    assert reply.ok, reply
    requests = await service.count(service.requests, 1, "requests")
    assert requests[0].content.text == "Hi L1"
    await service.sent(requests[0])
    await service.advance(timedelta(hours=1))
    requests = await service.count(service.requests, 2, "requests")
    assert requests[1].step_id == "later"
