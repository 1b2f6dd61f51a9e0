"""Sequences (drip campaigns) and enrollments, owned by the sequence service.

Subjects `sequence.<tenant>.<sequence_id>` and `enrollment.<tenant>.<enrollment_id>`. An
enrollment is one lead going through one sequence; it always sends through the lead's
assigned device, and pauses while that device is offline.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing, RetryPolicy, Step, Trigger

OnFailure = Literal["stop", "continue"]
"""When a step's message fails: end the enrollment as failed, or go on to the next step."""
OnReply = Literal["end", "pause", "ignore"]
"""When the lead replies: complete the enrollment, pause it, or carry on."""


class SequenceEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "sequence"

    sequence_id: str

    def subject(self, topology: Topology) -> str:
        return topology.sequence(self.tenant_id, self.sequence_id)


class SequenceCreated(SequenceEventBase, frozen=True, kw_only=True):
    """Step texts are templates, rendered per lead into each send request."""

    name: str
    steps: list[Step]
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    on_failure: OnFailure = "stop"
    stop_on_reply: OnReply = "end"
    status: Literal["draft", "active"] = "draft"


class SequenceStepsChanged(SequenceEventBase, frozen=True, kw_only=True):
    """The full new list of steps. Enrollments go on by step id: a step already sent is
    never sent again, a removed step is skipped, a new one is taken in its place."""

    steps: list[Step]


class SequenceSettingsChanged(SequenceEventBase, frozen=True, kw_only=True):
    """The full new settings (everything but steps and status)."""

    name: str
    pacing: Pacing = msgspec.field(default_factory=Pacing)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    triggers: list[Trigger] = msgspec.field(default_factory=list)
    on_failure: OnFailure = "stop"
    stop_on_reply: OnReply = "end"


class SequenceActivated(SequenceEventBase, frozen=True, kw_only=True):
    """Enrollments run and triggers enroll; also how a paused sequence resumes."""


class SequencePaused(SequenceEventBase, frozen=True, kw_only=True):
    """No step is sent and no one is enrolled by triggers until activated again."""

    reason: str = ""


class SequenceArchived(SequenceEventBase, frozen=True, kw_only=True):
    """Final: running enrollments are removed (`sequence_archived`)."""


class EnrollmentEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "enrollment"

    enrollment_id: str
    sequence_id: str

    def subject(self, topology: Topology) -> str:
        return topology.enrollment(self.tenant_id, self.enrollment_id)


class EnrollmentStarted(EnrollmentEventBase, frozen=True, kw_only=True):
    """`source`: `api` (enrolled by hand or by a filter) or `trigger`.

    `nth` counts the lead's enrollments in the sequence (the enrollment id is derived from
    sequence, lead and `nth`): a lead enrolls again only after its previous enrollment
    ended, so it is in a sequence at most once at a time.
    """

    lead_id: str
    device_id: str
    source: Literal["api", "trigger"] = "api"
    nth: int = 1


class EnrollmentStepScheduled(EnrollmentEventBase, frozen=True, kw_only=True):
    """Step `step_id` is due at `due_at` (delay and send window applied); the service's
    timer index is rebuilt from these."""

    step_id: str
    due_at: datetime


class EnrollmentStepRequested(EnrollmentEventBase, frozen=True, kw_only=True):
    """The step's send request `message_id` was appended (to the lead's device `device_id`,
    whose lane paces it); the step's timer is spent. Its outcome comes as a message event."""

    step_id: str
    message_id: str
    device_id: str = ""


class EnrollmentStepSent(EnrollmentEventBase, frozen=True, kw_only=True):
    """The step's message `message_id` was sent (recorded from `MessageSent`; `occurred_at`
    is when WhatsApp took it). The next step is scheduled from this moment."""

    step_id: str
    message_id: str


class EnrollmentStepFailed(EnrollmentEventBase, frozen=True, kw_only=True):
    """The step's message failed or was cancelled; `on_failure` decides what follows."""

    step_id: str
    message_id: str
    reason: str


class EnrollmentPaused(EnrollmentEventBase, frozen=True, kw_only=True):
    """`reason`: `device_offline` (a step fell due while `device_id`, the lead's device, was
    offline; resumed when it connects), `reply` (`stop_on_reply="pause"`), `sequence_paused`
    or `requested`. A reply or API pause also holds what waits in the lane (`SendsHeld`)."""

    reason: str
    device_id: str = ""


class EnrollmentResumed(EnrollmentEventBase, frozen=True, kw_only=True):
    """`reason`: `device_connected`, `device_assigned` (the lead moved to an online
    device) or `requested`. What fell due meanwhile is sent now, paced by the lane."""

    reason: str = ""


class EnrollmentCompleted(EnrollmentEventBase, frozen=True, kw_only=True):
    """`reason`: `last_step` (every step sent) or `reply` (`stop_on_reply="end"`)."""

    reason: str = "last_step"


class EnrollmentFailed(EnrollmentEventBase, frozen=True, kw_only=True):
    """A step failed with `on_failure="stop"`, or the lead has no device to send through."""

    reason: str
    step_id: str = ""


class EnrollmentRemoved(EnrollmentEventBase, frozen=True, kw_only=True):
    """Taken out before the end: `requested`, `opted_out`, `lead_deleted`,
    `device_deleted` or `sequence_archived`. Waiting messages are withdrawn."""

    reason: str = "requested"


SequenceEvent = (
    SequenceCreated
    | SequenceStepsChanged
    | SequenceSettingsChanged
    | SequenceActivated
    | SequencePaused
    | SequenceArchived
    | EnrollmentStarted
    | EnrollmentStepScheduled
    | EnrollmentStepRequested
    | EnrollmentStepSent
    | EnrollmentStepFailed
    | EnrollmentPaused
    | EnrollmentResumed
    | EnrollmentCompleted
    | EnrollmentFailed
    | EnrollmentRemoved
)
