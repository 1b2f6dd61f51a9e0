"""Commands get a clear answer: what was done, or a problem saying why not."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import msgspec

from wacast.contracts import ids
from wacast.contracts.base import Reply
from wacast.contracts.commands import (
    ActivateSequence,
    ArchiveSequence,
    ChangeSequenceSteps,
    CreateSequence,
    EnrollLeads,
    EnrollLeadsByFilter,
    PauseSequence,
    RemoveEnrollment,
)
from wacast.contracts.leads import LeadOptedOut, LeadTagsChanged
from wacast.contracts.messages import MessageFailed
from wacast.contracts.sequences import (
    EnrollmentFailed,
    EnrollmentRemoved,
    EnrollmentStarted,
    EnrollmentStepFailed,
)
from wacast.contracts.values import Audience, MessageContent, SendWindow, Step, Trigger
from wacast.runtime.commands import Requester
from wacast.sequence_service.progress import PROGRESS_QUERY, ProgressQuery, SequenceProgress

from .conftest import TENANT, Harness

HELLO = Step(id="hello", delay_seconds=0, message=MessageContent(text="Hello {name}"))
LATER = Step(id="later", delay_seconds=3600, message=MessageContent(text="Later"))


async def raw(harness: Harness, command: str, payload: dict[str, Any]) -> Reply:
    subject = f"{harness.topology.prefix}.cmd.sequences.{command}"
    body = json.dumps({"type": command, **payload}).encode()
    msg = await harness.nc.request(subject, body, timeout=10)
    return msgspec.json.decode(msg.data, type=Reply)


def problem_of(reply: Reply) -> tuple[int, str]:
    assert reply.problem is not None, reply
    return reply.problem.status, reply.problem.code


async def create(harness: Harness, sequence_id: str, *steps: Step, **kw: Any) -> Reply:
    reply = await harness.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id=sequence_id,
            name=sequence_id,
            steps=list(steps or (HELLO, LATER)),
            **{"activate": True, **kw},
        )
    )
    assert reply.ok, reply.problem
    return reply


async def test_bad_input_gets_a_clear_problem(service: Harness) -> None:
    step = {"id": "a", "delay_seconds": 0, "message": {"text": "hi"}}
    base = {"tenant_id": TENANT, "name": "x"}
    empty = await raw(service, "CreateSequence", {**base, "steps": []})
    negative = await raw(
        service, "CreateSequence", {**base, "steps": [{**step, "delay_seconds": -60}]}
    )
    assert problem_of(empty) == (422, "invalid_request")
    assert empty.problem is not None
    assert "at least one step" in empty.problem.detail
    assert problem_of(negative) == (422, "invalid_request")
    assert negative.problem is not None
    assert "delay_seconds must be >= 0" in negative.problem.detail

    mars = SendWindow(days=[0], start_hour=9, end_hour=10, timezone="Mars/Base")
    photo = MessageContent(text="see", media_id="nope")
    invalid = await service.send(
        CreateSequence(
            tenant_id=TENANT,
            name="x",
            steps=[
                Step(id="a", delay_seconds=0, message=HELLO.message, window=mars),
                Step(id="b", delay_seconds=0, message=photo),
            ],
        )
    )
    assert problem_of(invalid) == (422, "invalid_steps")
    assert invalid.problem is not None
    assert [e.get("step_id") or e.get("media_id") for e in invalid.problem.errors] == ["a", "nope"]

    await service.lead("known")
    await create(service, "s1")
    unknown = await service.send(
        EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["known", "ghost"])
    )
    assert problem_of(unknown) == (422, "unknown_leads")
    assert unknown.problem is not None
    assert unknown.problem.errors == [{"lead_id": "ghost", "reason": "unknown lead"}]
    assert not await service.enrollment_events(EnrollmentStarted), "nothing enrolled"

    missing = await service.send(
        EnrollLeads(tenant_id=TENANT, sequence_id="nope", lead_ids=["known"])
    )
    assert problem_of(missing) == (404, "sequence_not_found")
    bad_id = await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["a b"]))
    assert problem_of(bad_id) == (422, "invalid_request")

    await create(service, "draft", activate=False)
    draft = await service.send(
        EnrollLeads(tenant_id=TENANT, sequence_id="draft", lead_ids=["known"])
    )
    assert problem_of(draft) == (409, "sequence_not_active")
    assert (await service.send(ArchiveSequence(tenant_id=TENANT, sequence_id="draft"))).ok
    archived = await service.send(ActivateSequence(tenant_id=TENANT, sequence_id="draft"))
    assert problem_of(archived) == (409, "sequence_archived")
    exists = await service.send(
        CreateSequence(tenant_id=TENANT, sequence_id="s1", name="other", steps=[LATER])
    )
    assert problem_of(exists) == (409, "sequence_exists")


async def test_a_lead_is_in_a_sequence_once_at_a_time(service: Harness) -> None:
    await service.lead("l1")
    await service.lead("nodevice", device_id="")
    await service.lead("opted")
    await service.append(LeadOptedOut(tenant_id=TENANT, occurred_at=service.now, lead_id="opted"))
    await create(service, "s1")
    first = await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    again = await service.send(
        EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1", "nodevice", "opted"])
    )
    assert first.data["enrolled"] == ["l1"]
    assert (again.data["enrolled"], again.data["already"]) == ([], ["l1"])
    assert again.data["skipped"] == [
        {"lead_id": "nodevice", "reason": "no_device"},
        {"lead_id": "opted", "reason": "opted_out"},
    ]

    await service.send(RemoveEnrollment(tenant_id=TENANT, sequence_id="s1", lead_id="l1"))
    back = await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    assert back.data["enrolled"] == ["l1"]
    started = await service.enrollment_events(EnrollmentStarted)
    assert [(e.enrollment_id, e.nth) for e in started] == [
        (ids.enrollment_id("s1", "l1", 1), 1),
        (ids.enrollment_id("s1", "l1", 2), 2),
    ]


async def test_leads_enroll_by_filter_and_by_triggers(service: Harness) -> None:
    await service.device("d2")
    await service.lead("vip1", tags=["vip"], status="customer")
    await service.lead("vip2", tags=["vip", "sp"], status="prospect")
    await service.lead("vip3", "d2", tags=["vip"], status="customer")
    await service.lead("plain", tags=[], status="customer")
    await create(service, "s1")
    by_filter = await service.send(
        EnrollLeadsByFilter(
            tenant_id=TENANT,
            sequence_id="s1",
            filter=Audience(status="customer", tags=["vip"], device_ids=["d1"]),
        )
    )
    assert by_filter.data == {"matched": 1, "enrolled": 1, "already": 0}

    await create(
        service,
        "welcome",
        triggers=[
            Trigger(on="lead_created", device_ids=["d1"]),
            Trigger(on="tag_added", tag="hot"),
        ],
    )
    await service.lead("newcomer")
    await service.lead("elsewhere", "d2")
    await service.append(
        LeadTagsChanged(
            tenant_id=TENANT,
            occurred_at=service.now,
            lead_id="vip3",
            tags=["vip", "hot"],
            added=["hot"],
        )
    )
    await service.count(
        lambda: service.enrollment_events(EnrollmentStarted), 3, "enrollments by triggers"
    )
    started = await service.enrollment_events(EnrollmentStarted)
    assert sorted((e.sequence_id, e.lead_id, e.source) for e in started) == [
        ("s1", "vip1", "api"),
        ("welcome", "newcomer", "trigger"),
        ("welcome", "vip3", "trigger"),
    ]


async def test_editing_an_active_sequence_changes_only_steps_not_yet_sent(service: Harness) -> None:
    await service.lead("l1", name="Ana")
    await create(service, "s1", HELLO, LATER)
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1"]))
    (hello,) = await service.count(service.requests, 1, "the first step")
    new_first = Step(id="new", delay_seconds=0, message=MessageContent(text="New first"))
    edited_later = Step(id="later", delay_seconds=600, message=MessageContent(text="Edited {name}"))
    changed = await service.send(
        ChangeSequenceSteps(
            tenant_id=TENANT, sequence_id="s1", steps=[new_first, HELLO, edited_later]
        )
    )
    assert changed.ok
    await service.sent(hello)
    _, new = await service.count(service.requests, 2, "the inserted step")
    assert (new.step_id, new.content.text) == ("new", "New first")
    await service.sent(new)
    await service.advance(timedelta(minutes=10))
    *_, later = await service.count(service.requests, 3, "the edited step")
    assert (later.step_id, later.content.text) == ("later", "Edited Ana")
    assert later.message_id == ids.step_message_id(ids.enrollment_id("s1", "l1"), "later")
    assert [r.step_id for r in await service.requests()] == ["hello", "new", "later"]


async def test_a_failed_step_stops_the_enrollment_and_progress_counts_it(service: Harness) -> None:
    await service.lead("l1")
    await service.lead("l2")
    await create(service, "s1", on_failure="stop")
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["l1", "l2"]))
    first, second = await service.count(service.requests, 2, "the first steps")
    await service.sent(first)
    await service.append(
        MessageFailed(
            tenant_id=TENANT,
            occurred_at=service.now,
            message_id=second.message_id,
            device_id="d1",
            lead_id=second.lead_id,
            origin="sequence",
            origin_id=second.origin_id,
            reason="not_on_whatsapp",
        )
    )
    (failed,) = await service.count(
        lambda: service.enrollment_events(EnrollmentFailed), 1, "the failed enrollment"
    )
    assert (failed.reason, failed.step_id) == ("not_on_whatsapp", "hello")
    (step,) = await service.enrollment_events(EnrollmentStepFailed)
    assert step.message_id == second.message_id
    paused = await service.send(PauseSequence(tenant_id=TENANT, sequence_id="s1"))
    assert paused.ok
    progress = await Requester(service.nc, service.topology).query(
        PROGRESS_QUERY,
        ProgressQuery(tenant_id=TENANT, sequence_id="s1", after_seq=paused.seq),
        SequenceProgress,
    )
    assert progress == SequenceProgress(
        sequence_id="s1",
        status="paused",
        steps=2,
        enrolled=2,
        active=1,
        failed=1,
        messages_sent=1,
        percentage=50.0,
    )
    assert not await service.enrollment_events(EnrollmentRemoved)
