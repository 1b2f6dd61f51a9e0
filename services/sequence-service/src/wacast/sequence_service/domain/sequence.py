"""The sequence aggregate: its steps and settings, and its life from draft to archived.

draft -> active <-> paused -> archived (final). Steps are edited by their stable ids: an
active sequence can change, and enrollments go on with the steps they have not had yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.commands import (
    ActivateSequence,
    ArchiveSequence,
    ChangeSequenceSettings,
    ChangeSequenceSteps,
    CreateSequence,
    PauseSequence,
)
from wacast.contracts.sequences import (
    OnFailure,
    OnReply,
    SequenceActivated,
    SequenceArchived,
    SequenceCreated,
    SequenceEventBase,
    SequencePaused,
    SequenceSettingsChanged,
    SequenceStepsChanged,
)
from wacast.contracts.values import Pacing, RetryPolicy, Step, Trigger
from wacast.sequence_service.domain.errors import Refused, not_found

Status = Literal["draft", "active", "paused", "archived"]
SequenceCommand = (
    CreateSequence
    | ChangeSequenceSteps
    | ChangeSequenceSettings
    | ActivateSequence
    | PauseSequence
    | ArchiveSequence
)


class Sequence(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    sequence_id: str
    name: str
    steps: list[Step]
    pacing: Pacing
    retry: RetryPolicy
    triggers: list[Trigger]
    on_failure: OnFailure
    stop_on_reply: OnReply
    status: Status
    activated_at: datetime | None = None
    """Since when it runs: triggers only enroll for lead events from then on."""

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


def evolve(state: Sequence | None, event: SequenceEventBase) -> Sequence | None:
    if isinstance(event, SequenceCreated):
        return Sequence(
            tenant_id=event.tenant_id,
            sequence_id=event.sequence_id,
            name=event.name,
            steps=event.steps,
            pacing=event.pacing,
            retry=event.retry,
            triggers=event.triggers,
            on_failure=event.on_failure,
            stop_on_reply=event.stop_on_reply,
            status=event.status,
            activated_at=event.occurred_at if event.status == "active" else None,
        )
    if state is None:
        return None
    if isinstance(event, SequenceStepsChanged):
        return msgspec.structs.replace(state, steps=event.steps)
    if isinstance(event, SequenceSettingsChanged):
        return msgspec.structs.replace(
            state,
            name=event.name,
            pacing=event.pacing,
            retry=event.retry,
            triggers=event.triggers,
            on_failure=event.on_failure,
            stop_on_reply=event.stop_on_reply,
        )
    if isinstance(event, SequenceActivated):
        return msgspec.structs.replace(state, status="active", activated_at=event.occurred_at)
    if isinstance(event, SequencePaused):
        return msgspec.structs.replace(state, status="paused")
    if isinstance(event, SequenceArchived):
        return msgspec.structs.replace(state, status="archived")
    return state


class _Base(TypedDict):
    tenant_id: str
    sequence_id: str
    occurred_at: datetime


def decide(state: Sequence | None, command: SequenceCommand, now: datetime) -> list[Event]:
    """The events `command` leads to; [] when it changes nothing (a repeated command)."""
    if isinstance(command, CreateSequence):
        return _create(state, command, now)
    if state is None:
        raise not_found("sequence", command.sequence_id)
    base = _Base(tenant_id=state.tenant_id, sequence_id=state.sequence_id, occurred_at=now)
    if isinstance(command, ArchiveSequence):
        return [] if state.status == "archived" else [SequenceArchived(**base)]
    if state.status == "archived":
        raise Refused("sequence_archived", "The sequence is archived", 409)
    if isinstance(command, ChangeSequenceSteps):
        return (
            []
            if command.steps == state.steps
            else [SequenceStepsChanged(**base, steps=command.steps)]
        )
    if isinstance(command, ChangeSequenceSettings):
        changed = SequenceSettingsChanged(
            **base,
            name=command.name,
            pacing=command.pacing,
            retry=command.retry,
            triggers=command.triggers,
            on_failure=command.on_failure,
            stop_on_reply=command.stop_on_reply,
        )
        return [] if evolve(state, changed) == state else [changed]
    if isinstance(command, ActivateSequence):
        return [] if state.status == "active" else [SequenceActivated(**base)]
    if state.status == "draft":
        raise Refused("sequence_not_active", "Only an active sequence can be paused", 409)
    return [] if state.status == "paused" else [SequencePaused(**base, reason=command.reason)]


def _create(state: Sequence | None, command: CreateSequence, now: datetime) -> list[Event]:
    created = SequenceCreated(
        tenant_id=command.tenant_id,
        sequence_id=command.sequence_id,
        occurred_at=now,
        name=command.name,
        steps=command.steps,
        pacing=command.pacing,
        retry=command.retry,
        triggers=command.triggers,
        on_failure=command.on_failure,
        stop_on_reply=command.stop_on_reply,
        status="active" if command.activate else "draft",
    )
    if state is None:
        return [created]
    if _definition(state) == _definition(command):
        return []  # the same sequence again: a retried create
    raise Refused("sequence_exists", "A sequence with this id exists", 409, command.sequence_id)


def _definition(of: Sequence | CreateSequence) -> tuple[object, ...]:
    return (
        of.name,
        of.steps,
        of.pacing,
        of.retry,
        of.triggers,
        of.on_failure,
        of.stop_on_reply,
    )
