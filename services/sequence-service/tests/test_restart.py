"""Invariant 2 for sequences: across restarts, no step is sent twice and none is skipped."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from wacast.contracts import ids
from wacast.contracts.commands import CreateSequence, EnrollLeads
from wacast.contracts.messages import MessageRequested
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentStepRequested,
    EnrollmentStepScheduled,
)
from wacast.contracts.streams import MESSAGES
from wacast.contracts.values import MessageContent, Step

from .conftest import TENANT, Harness

LEADS = [f"l{n:03d}" for n in range(60)]
STEPS = ["a", "b", "c"]


async def send_all_sent(harness: Harness, step_id: str) -> None:
    for request in await harness.requests():
        if request.step_id == step_id:
            await harness.sent(request)


async def scheduled(harness: Harness, step_id: str) -> None:
    """Wait until every enrollment has `step_id` scheduled: the outcomes before it are
    recorded (a consumer stopped with outcomes in hand sees them again after its ack wait,
    30 s, which is longer than this test should take)."""

    async def found() -> list[EnrollmentStepScheduled]:
        events = await harness.enrollment_events(EnrollmentStepScheduled)
        return [e for e in events if e.step_id == step_id]

    await harness.count(found, len(LEADS), f"{step_id} scheduled for every lead")


async def test_restarting_mid_sequence_sends_nothing_twice_and_skips_nothing(
    harness: Harness,
) -> None:
    await harness.tenant()
    await harness.device("d1")
    for lead in LEADS:
        await harness.lead(lead)
    await harness.start(sequences_timer_batch=10)
    reply = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id="drip",
            name="Drip",
            activate=True,
            steps=[
                Step(id=s, delay_seconds=0 if s == "a" else 3600, message=MessageContent(text=s))
                for s in STEPS
            ],
        )
    )
    assert reply.ok, reply.problem
    enrolled = await harness.send(EnrollLeads(tenant_id=TENANT, sequence_id="drip", lead_ids=LEADS))
    assert len(enrolled.data["enrolled"]) == len(LEADS)
    await harness.count(harness.requests, 1, "the first requests")
    await harness.stop()  # killed while firing the first steps, most likely
    await harness.start(sequences_timer_batch=10)
    await harness.count(harness.requests, len(LEADS), "every first step")

    await harness.stop()
    await send_all_sent(harness, "a")  # outcomes arrive while the service is down
    await harness.start(sequences_timer_batch=10)
    await scheduled(harness, "b")
    await harness.stop()
    await harness.advance(timedelta(hours=2))  # the second steps fall due while it is down
    crashed = ids.enrollment_id(
        "drip", LEADS[0]
    )  # as if it died after requesting, before recording
    before = await harness.requests()
    first = next(r for r in before if r.origin_id == crashed)
    await harness.append(
        MessageRequested(
            **{
                f: getattr(first, f)
                for f in MessageRequested.__struct_fields__
                if f not in ("message_id", "step_id", "occurred_at", "v")
            },
            message_id=ids.step_message_id(crashed, "b"),
            step_id="b",
            occurred_at=harness.now,
        )
    )
    await harness.start(sequences_timer_batch=10)
    await harness.count(harness.requests, len(LEADS) + 1, "some second steps")
    await harness.stop()
    await harness.start(sequences_timer_batch=10)
    await harness.count(harness.requests, 2 * len(LEADS), "every second step")

    await send_all_sent(harness, "b")
    await scheduled(harness, "c")
    await harness.stop()
    await harness.advance(timedelta(hours=2))
    await harness.start(sequences_timer_batch=10)
    await harness.count(harness.requests, 3 * len(LEADS), "every third step")
    await send_all_sent(harness, "c")
    await harness.count(
        lambda: harness.enrollment_events(EnrollmentCompleted), len(LEADS), "completions"
    )

    requests = await harness.requests()
    per_step = Counter((r.origin_id, r.step_id) for r in requests)
    expected = {(ids.enrollment_id("drip", lead), s) for lead in LEADS for s in STEPS}
    assert set(per_step) == expected, "no step skipped"
    assert set(per_step.values()) == {1}, "no step requested twice"
    recorded = Counter(
        (e.enrollment_id, e.step_id)
        for e in await harness.enrollment_events(EnrollmentStepRequested)
    )
    assert set(recorded) == expected
    assert set(recorded.values()) == {1}
    assert len(await harness.events(MESSAGES, "sendreq")) == 3 * len(LEADS)
