"""A step falls due, a sequence's steps change, a step's message has an outcome.

Each is a pure decision on one enrollment: what to request and what to record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.messages import MessageRequested
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentFailed,
    EnrollmentStepFailed,
    EnrollmentStepRequested,
    EnrollmentStepScheduled,
    EnrollmentStepSent,
)
from wacast.contracts.templates import render
from wacast.contracts.values import MediaRef, MessageContent, Step
from wacast.sequence_service.domain.enrollment import (
    NOTHING,
    Decision,
    Enrollment,
    advance,
    base,
    evolve,
    next_step,
    pause,
    remove,
)
from wacast.sequence_service.domain.schedule import due_at, in_window, next_opening, resolved
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import DeviceView, LeadView


@dataclass(frozen=True)
class Surroundings:
    """What a due step needs to know besides its enrollment."""

    sequence: Sequence
    lead: LeadView
    device: DeviceView | None
    timezone: str
    media: Mapping[str, MediaRef]
    now: datetime


def fire(state: Enrollment, around: Surroundings) -> Decision:
    """The step in play is due: send it through the lead's device, or say why not now."""
    now, lead, sequence, tz = around.now, around.lead, around.sequence, around.timezone
    if state.status != "active" or state.due_at is None or state.due_at > now:
        return NOTHING
    if lead.deleted or lead.opted_out:
        return remove(state, "lead_deleted" if lead.deleted else "opted_out", now)
    step = next_step(sequence, state)
    if step is None:
        return Decision([EnrollmentCompleted(**base(state, now), reason="last_step")])
    due = due_at(state.anchor_at, step, tz)
    if due > now:  # the step changed (edited, or another took its place): not yet
        return Decision([EnrollmentStepScheduled(**base(state, now), step_id=step.id, due_at=due)])
    if step.window is not None and not in_window(now, step.window, tz):
        opening = next_opening(now, step.window, tz)
        return Decision(
            [EnrollmentStepScheduled(**base(state, now), step_id=step.id, due_at=opening)]
        )
    if not lead.device_id:
        return Decision([EnrollmentFailed(**base(state, now), reason="no_device", step_id=step.id)])
    if around.device is not None and around.device.deleted:
        return remove(state, "device_deleted", now)
    if around.device is None or not around.device.online:
        return pause(state, "device_offline", now, lead.device_id)
    return _request(state, step, around)


def _request(state: Enrollment, step: Step, around: Surroundings) -> Decision:
    lead, sequence, now = around.lead, around.sequence, around.now
    message_id = ids.step_message_id(state.enrollment_id, step.id)
    media = around.media.get(step.message.media_id) if step.message.media_id else None
    text = render(step.message.text, name=lead.name, phone=lead.phone, attributes=lead.attributes)
    problem = (
        "media_missing"
        if step.message.media_id and media is None
        else "empty_message"
        if not (text.strip() or media)
        else ""
    )
    if problem:
        failed = EnrollmentStepFailed(
            **base(state, now), step_id=step.id, message_id=message_id, reason=problem
        )
        after = evolve(state, failed)
        assert after is not None
        return Decision(
            [failed, *after_failure(after, sequence, now, around.timezone, problem, step.id)]
        )
    request = MessageRequested(
        tenant_id=state.tenant_id,
        occurred_at=now,
        message_id=message_id,
        device_id=lead.device_id,
        lead_id=lead.lead_id,
        origin="sequence",
        origin_id=state.enrollment_id,
        sequence_id=state.sequence_id,
        step_id=step.id,
        to=lead.phone,
        content=MessageContent(text=text, media_id=step.message.media_id),
        media=media,
        pacing=sequence.pacing,
        retry=sequence.retry,
        window=None if step.window is None else resolved(step.window, around.timezone),
    )
    requested = EnrollmentStepRequested(
        **base(state, now), step_id=step.id, message_id=message_id, device_id=lead.device_id
    )
    return Decision([requested], request=request)


def after_failure(
    state: Enrollment, sequence: Sequence, now: datetime, timezone: str, reason: str, step_id: str
) -> list[Event]:
    """Step `step_id` failed: the sequence's `on_failure` stops the enrollment or goes on."""
    if sequence.on_failure == "stop":
        return [EnrollmentFailed(**base(state, now), reason=reason, step_id=step_id)]
    return advance(state, sequence, now, timezone)


def replan(state: Enrollment, sequence: Sequence, now: datetime, timezone: str) -> Decision:
    """The steps changed: move a waiting step to what the current steps say."""
    if not state.running or state.due_at is None:
        return NOTHING
    step = next_step(sequence, state)
    if step is None:
        return Decision([EnrollmentCompleted(**base(state, now), reason="last_step")])
    due = due_at(state.anchor_at, step, timezone)
    if (step.id, due) == (state.step_id, state.due_at):
        return NOTHING
    return Decision([EnrollmentStepScheduled(**base(state, now), step_id=step.id, due_at=due)])


def step_of_message(state: Enrollment, sequence: Sequence, message_id: str) -> str | None:
    if state.message_id == message_id:
        return state.step_id
    known = {s.id for s in sequence.steps} | state.done.keys()
    return next(
        (s for s in known if ids.step_message_id(state.enrollment_id, s) == message_id), None
    )


def outcome(
    state: Enrollment,
    sequence: Sequence,
    *,
    message_id: str,
    sent: bool,
    reason: str,
    at: datetime,
    timezone: str,
) -> Decision:
    """A step's message was sent, or failed (or was cancelled) with `reason`, at `at`."""
    step_id = step_of_message(state, sequence, message_id)
    if step_id is None or state.done.get(step_id) in ("sent", "failed"):
        return NOTHING
    fields = base(state, at)
    first: EnrollmentStepSent | EnrollmentStepFailed = (
        EnrollmentStepSent(**fields, step_id=step_id, message_id=message_id)
        if sent
        else EnrollmentStepFailed(**fields, step_id=step_id, message_id=message_id, reason=reason)
    )
    if not state.running:
        return Decision([first])
    after = evolve(state, first)
    assert after is not None
    if sent:
        return Decision([first, *advance(after, sequence, at, timezone)])
    return Decision([first, *after_failure(after, sequence, at, timezone, reason, step_id)])
