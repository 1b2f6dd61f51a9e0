"""The enrollment aggregate: one lead going through one sequence, step by step.

active <-> paused, then completed, failed or removed (final). At most one step is in play
at a time: scheduled (waiting for its due time), then requested (its message waits in the
device's lane), then sent or failed, which schedules the next step from that moment.
Steps are tracked by their stable ids, so a sequence edited meanwhile goes on with the
first of its current steps that this enrollment has not had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypedDict

import msgspec

from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.messages import (
    MessageRequested,
    SendControlEventBase,
    SendsHeld,
    SendsReleased,
    SendsWithdrawn,
)
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentEventBase,
    EnrollmentFailed,
    EnrollmentPaused,
    EnrollmentRemoved,
    EnrollmentResumed,
    EnrollmentStarted,
    EnrollmentStepFailed,
    EnrollmentStepRequested,
    EnrollmentStepScheduled,
    EnrollmentStepSent,
)
from wacast.contracts.values import Step
from wacast.sequence_service.domain.schedule import due_at
from wacast.sequence_service.domain.sequence import Sequence

Status = Literal["active", "paused", "completed", "failed", "removed"]
RUNNING: tuple[Status, ...] = ("active", "paused")
WITHDRAWAL_REASONS = {
    "opted_out": "opted_out",
    "lead_deleted": "lead_deleted",
    "device_deleted": "device_deleted",
}
"""Removal reason -> reason the lane cancels waiting messages with (else enrollment_removed)."""
HOLDING = ("reply", "requested")
"""Pauses that hold what waits in the lane (a device offline holds its whole lane itself)."""


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    enrollment_id: str
    sequence_id: str
    lead_id: str
    device_id: str
    nth: int
    started_at: datetime
    anchor_at: datetime
    """Where the next step's delay counts from: the start, or the last step's outcome."""
    status: Status = "active"
    reason: str = ""
    step_id: str = ""
    """The step in play: scheduled, or requested and waiting for its outcome."""
    due_at: datetime | None = None
    """Set while `step_id` waits for its due time; the timers fire on it."""
    message_id: str = ""
    """The requested message whose outcome is awaited ("" when none)."""
    done: dict[str, str] = msgspec.field(default_factory=dict)
    """Step id -> `requested`, `sent` or `failed`: never played again."""
    sent: int = 0
    failed: int = 0

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class Decision:
    """What to append: a send request or a send control (hold, release, withdrawal of what
    waits in the lane; MESSAGES) first, then `events` (the enrollment's own subject). Empty
    when nothing is to be done."""

    events: list[Event] = field(default_factory=list)
    request: MessageRequested | None = None
    control: SendControlEventBase | None = None

    def __bool__(self) -> bool:
        return bool(self.events or self.request or self.control)


NOTHING = Decision()


def evolve(state: Enrollment | None, event: EnrollmentEventBase) -> Enrollment | None:
    if isinstance(event, EnrollmentStarted):
        return Enrollment(
            tenant_id=event.tenant_id,
            enrollment_id=event.enrollment_id,
            sequence_id=event.sequence_id,
            lead_id=event.lead_id,
            device_id=event.device_id,
            nth=event.nth,
            started_at=event.occurred_at,
            anchor_at=event.occurred_at,
        )
    if state is None:
        return None
    replace = msgspec.structs.replace
    if isinstance(event, EnrollmentStepScheduled):
        return replace(state, step_id=event.step_id, due_at=event.due_at)
    if isinstance(event, EnrollmentStepRequested):
        done = {**state.done, event.step_id: "requested"}
        return replace(
            state, step_id=event.step_id, due_at=None, message_id=event.message_id, done=done
        )
    if isinstance(event, EnrollmentStepSent | EnrollmentStepFailed):
        sent = isinstance(event, EnrollmentStepSent)
        return replace(
            state,
            done={**state.done, event.step_id: "sent" if sent else "failed"},
            anchor_at=event.occurred_at,
            due_at=None if state.step_id == event.step_id else state.due_at,
            message_id="" if state.message_id == event.message_id else state.message_id,
            sent=state.sent + sent,
            failed=state.failed + (not sent),
        )
    if isinstance(event, EnrollmentPaused):
        return replace(state, status="paused", reason=event.reason)
    if isinstance(event, EnrollmentResumed):
        return replace(state, status="active", reason="")
    if isinstance(event, EnrollmentCompleted | EnrollmentFailed | EnrollmentRemoved):
        status: Status = (
            "completed"
            if isinstance(event, EnrollmentCompleted)
            else "failed"
            if isinstance(event, EnrollmentFailed)
            else "removed"
        )
        return replace(state, status=status, reason=event.reason, due_at=None)
    return state


def replay(events: list[EnrollmentEventBase]) -> Enrollment | None:
    state: Enrollment | None = None
    for event in events:
        state = evolve(state, event)
    return state


def next_step(sequence: Sequence, state: Enrollment) -> Step | None:
    """The first of the sequence's current steps this enrollment has not had."""
    return next((s for s in sequence.steps if s.id not in state.done), None)


class Base(TypedDict):
    tenant_id: str
    enrollment_id: str
    sequence_id: str
    occurred_at: datetime


def base(state: Enrollment, now: datetime) -> Base:
    """The fields every event of this enrollment carries."""
    return Base(
        tenant_id=state.tenant_id,
        enrollment_id=state.enrollment_id,
        sequence_id=state.sequence_id,
        occurred_at=now,
    )


def start(
    sequence: Sequence,
    *,
    lead_id: str,
    device_id: str,
    nth: int,
    source: Literal["api", "trigger"],
    now: datetime,
    timezone: str,
) -> list[Event]:
    """Enroll: the start and the first step's due time, for one atomic append."""
    enrollment_id = ids.enrollment_id(sequence.sequence_id, lead_id, nth)
    first = sequence.steps[0]
    fields = Base(
        tenant_id=sequence.tenant_id,
        enrollment_id=enrollment_id,
        sequence_id=sequence.sequence_id,
        occurred_at=now,
    )
    return [
        EnrollmentStarted(**fields, lead_id=lead_id, device_id=device_id, source=source, nth=nth),
        EnrollmentStepScheduled(**fields, step_id=first.id, due_at=due_at(now, first, timezone)),
    ]


def advance(state: Enrollment, sequence: Sequence, now: datetime, timezone: str) -> list[Event]:
    """After a step's outcome (at `now`): schedule the next step, or complete."""
    step = next_step(sequence, state)
    if step is None:
        return [EnrollmentCompleted(**base(state, now), reason="last_step")]
    return [
        EnrollmentStepScheduled(
            **base(state, now), step_id=step.id, due_at=due_at(now, step, timezone)
        )
    ]


class _Scope(TypedDict):
    tenant_id: str
    occurred_at: datetime
    scope: Literal["enrollment"]
    scope_id: str


def _scope(state: Enrollment, now: datetime) -> _Scope:
    return _Scope(
        tenant_id=state.tenant_id, occurred_at=now, scope="enrollment", scope_id=state.enrollment_id
    )


def pause(state: Enrollment, reason: str, now: datetime, device_id: str = "") -> Decision:
    """Paused by hand or by a reply, what waits in the lane is held too."""
    if state.status != "active":
        return NOTHING
    hold = SendsHeld(**_scope(state, now), reason=reason) if reason in HOLDING else None
    return Decision(
        [EnrollmentPaused(**base(state, now), reason=reason, device_id=device_id)], control=hold
    )


def resume(state: Enrollment, reason: str, now: datetime) -> Decision:
    if state.status != "paused":
        return NOTHING
    release = SendsReleased(**_scope(state, now)) if state.reason in HOLDING else None
    return Decision([EnrollmentResumed(**base(state, now), reason=reason)], control=release)


def remove(state: Enrollment, reason: str, now: datetime) -> Decision:
    """Take the lead out; what waits in the lane for this enrollment is withdrawn first."""
    if not state.running:
        return NOTHING
    withdrawal = SendsWithdrawn(
        **_scope(state, now), reason=WITHDRAWAL_REASONS.get(reason, "enrollment_removed")
    )
    return Decision([EnrollmentRemoved(**base(state, now), reason=reason)], control=withdrawal)


def replied(state: Enrollment, sequence: Sequence, now: datetime) -> Decision:
    """The lead wrote back: the sequence's `stop_on_reply` says what follows. Ended, what
    waits in the lane is withdrawn (`lead_replied`); paused, it is held."""
    if not state.running or sequence.stop_on_reply == "ignore":
        return NOTHING
    if sequence.stop_on_reply == "end":
        return Decision(
            [EnrollmentCompleted(**base(state, now), reason="reply")],
            control=SendsWithdrawn(**_scope(state, now), reason="lead_replied"),
        )
    return pause(state, "reply", now)
