"""Steps go out when they are due, in their send windows, in the tenant's timezone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from wacast.contracts.commands import CreateSequence, EnrollLeads
from wacast.contracts.sequences import EnrollmentCompleted, EnrollmentStepScheduled
from wacast.contracts.values import MessageContent, Pacing, SendWindow, Step

from .conftest import TENANT, Harness

MORNINGS = SendWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=12)


async def test_steps_go_out_at_their_delays_and_inside_send_windows(harness: Harness) -> None:
    await harness.tenant("America/Sao_Paulo")  # UTC-3
    await harness.device("d1")
    await harness.start()
    await harness.lead("l1", name="Ana")
    t0 = harness.now  # Monday 09:00 UTC, 06:00 in São Paulo
    created = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id="welcome",
            name="Welcome",
            activate=True,
            pacing=Pacing(min_seconds=20, max_seconds=40),
            steps=[
                Step(id="hello", delay_seconds=0, message=MessageContent(text="Hi {name}")),
                Step(
                    id="tips",
                    delay_seconds=7200,
                    message=MessageContent(text="Tips"),
                    window=MORNINGS,
                ),
                Step(id="offer", delay_seconds=86_400, message=MessageContent(text="Offer")),
            ],
        )
    )
    assert created.ok, created.problem
    enrolled = await harness.send(
        EnrollLeads(tenant_id=TENANT, sequence_id="welcome", lead_ids=["l1"])
    )
    assert enrolled.data["enrolled"] == ["l1"]

    (hello,) = await harness.count(harness.requests, 1, "the first step's request")
    assert (hello.step_id, hello.content.text, hello.occurred_at) == ("hello", "Hi Ana", t0)
    assert hello.pacing == Pacing(min_seconds=20, max_seconds=40)
    assert hello.window is None

    await harness.advance(timedelta(minutes=10))
    await harness.sent(hello)
    # 2 h after 09:10 UTC is 08:10 in São Paulo: before the window, so 09:00 local (12:00 UTC).
    tips_due = datetime(2030, 1, 7, 12, 0, tzinfo=UTC)

    async def tips_scheduled() -> list[EnrollmentStepScheduled]:
        found = await harness.enrollment_events(EnrollmentStepScheduled)
        return [e for e in found if e.step_id == "tips"]

    (scheduled,) = await harness.until(tips_scheduled, "the second step to be scheduled")
    assert scheduled.due_at == tips_due

    await harness.advance_to(tips_due - timedelta(minutes=1))
    await asyncio.sleep(0.5)
    assert len(await harness.requests()) == 1, "nothing is sent before its due time"
    await harness.advance_to(tips_due)
    _, tips = await harness.count(harness.requests, 2, "the second step's request")
    assert (tips.step_id, tips.occurred_at) == ("tips", tips_due)
    assert tips.window is not None
    assert tips.window.timezone == "America/Sao_Paulo", "the request names the tenant's zone"

    await harness.advance(timedelta(minutes=5))
    await harness.sent(tips)
    offer_due = tips_due + timedelta(minutes=5, days=1)
    await harness.advance_to(offer_due - timedelta(seconds=1))
    await asyncio.sleep(0.5)
    assert len(await harness.requests()) == 2
    await harness.advance_to(offer_due)
    *_, offer = await harness.count(harness.requests, 3, "the third step's request")
    assert (offer.step_id, offer.occurred_at) == ("offer", offer_due)

    await harness.sent(offer)
    (completed,) = await harness.count(
        lambda: harness.enrollment_events(EnrollmentCompleted), 1, "completion"
    )
    assert completed.reason == "last_step"
    assert [r.message_id for r in await harness.requests()] == [
        hello.message_id,
        tips.message_id,
        offer.message_id,
    ]
