"""Commands of the `sequences` owner: parse, check against state, decide, append, reply."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec

from wacast.contracts.base import Problem, Reply
from wacast.contracts.commands import (
    ArchiveSequence,
    ChangeSequenceSteps,
    CreateSequence,
    EnrollLeads,
    EnrollLeadsByFilter,
    PauseEnrollment,
    RemoveEnrollment,
    RemoveLeadFromSequences,
    ResumeEnrollment,
    SequenceCommand,
)
from wacast.contracts.streams import LEADS, MEDIA, SEQUENCES
from wacast.contracts.subjects import check_token
from wacast.contracts.values import Step
from wacast.runtime.commands import problem
from wacast.sequence_service.core import Core
from wacast.sequence_service.domain import enrollment as rules
from wacast.sequence_service.domain import sequence as sequences
from wacast.sequence_service.domain.errors import Refused, not_found
from wacast.sequence_service.domain.schedule import zone
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import LeadView


class Commands:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.stream = SEQUENCES.name(core.topology)

    async def handle(self, command: SequenceCommand) -> Reply:
        try:
            check_token(command.tenant_id, "tenant")
            if isinstance(command, EnrollLeads | EnrollLeadsByFilter):
                return await self._enroll(command)
            if isinstance(command, RemoveEnrollment | PauseEnrollment | ResumeEnrollment):
                return await self._one_enrollment(command)
            if isinstance(command, RemoveLeadFromSequences):
                return await self._remove_everywhere(command)
            return await self._sequence(command)
        except Refused as refused:
            return Reply(
                ok=False,
                problem=Problem(
                    code=refused.code,
                    title=refused.title,
                    status=refused.status,
                    detail=refused.detail,
                    errors=refused.extra.get("errors", []),
                ),
            )
        except ValueError as exc:
            return problem("invalid_request", "The request is not valid", 422, str(exc))

    async def _sequence(self, command: sequences.SequenceCommand) -> Reply:
        core = self.core
        if isinstance(command, CreateSequence):
            command = msgspec.structs.replace(command, sequence_id=_new_id(command))
        check_token(command.sequence_id, "sequence id")
        if isinstance(command, CreateSequence | ChangeSequenceSteps):
            await self._check_steps(command.tenant_id, command.steps)
        state, last = await core.sequence(command.tenant_id, command.sequence_id)
        events = sequences.decide(state, command, core.clock.now())
        seq = 0
        if events:
            key = command.idempotency_key or f"{command.sequence_id}.{last}"
            appended = await core.store.append(
                core.topology.sequence(command.tenant_id, command.sequence_id),
                events,
                msg_id=f"{command.tenant_id}.{key}",
                expected=last,
            )
            seq = appended.seq
            for event in events:
                state = sequences.evolve(state, event)  # type: ignore[arg-type]
            await core.read_own(seq)
            self._after(command)
        assert state is not None
        return self._ok(seq, state.sequence_id, status=state.status)

    def _after(self, command: sequences.SequenceCommand) -> None:
        tenant, sid = command.tenant_id, command.sequence_id
        if isinstance(command, ChangeSequenceSteps):
            self.core.spawn(self.core.replan_sequence(tenant, sid), f"replan {sid}")
        elif isinstance(command, ArchiveSequence):
            work = self.core.remove_from_sequence(tenant, sid, "sequence_archived")
            self.core.spawn(work, f"archive {sid}")

    async def _check_steps(self, tenant_id: str, steps: list[Step]) -> None:
        errors: list[dict[str, Any]] = []
        for step in steps:
            if step.window is not None and step.window.timezone:
                try:
                    zone(step.window.timezone)
                except ValueError as exc:
                    errors.append({"step_id": step.id, "reason": str(exc)})
        wanted = {(tenant_id, s.message.media_id) for s in steps if s.message.media_id}
        if wanted and len(await self.core.lookups.media(wanted)) < len(wanted):
            await self.core.caught_up(MEDIA)
            found = await self.core.lookups.media(wanted)
            errors += [
                {"media_id": media_id, "reason": "unknown media"}
                for key in sorted(wanted - found.keys())
                for media_id in [key[1]]
            ]
        if errors:
            raise Refused("invalid_steps", "Some steps cannot be sent", 422, errors=errors)

    async def _active(self, tenant_id: str, sequence_id: str) -> Sequence:
        check_token(sequence_id, "sequence id")
        state, _ = await self.core.sequence(tenant_id, sequence_id)
        if state is None:
            raise not_found("sequence", sequence_id)
        if state.status not in ("active", "paused"):
            raise Refused(
                "sequence_not_active",
                "Leads enroll in active (or paused) sequences only",
                409,
                f"sequence {sequence_id} is {state.status}",
            )
        return state

    async def _enroll(self, command: EnrollLeads | EnrollLeadsByFilter) -> Reply:
        core = self.core
        sequence = await self._active(command.tenant_id, command.sequence_id)
        skipped: list[dict[str, str]] = []
        if isinstance(command, EnrollLeadsByFilter):
            await core.caught_up(LEADS)
            leads = await core.lookups.matching(command.tenant_id, command.filter)
        else:
            leads = await self._known_leads(command.tenant_id, command.lead_ids)
            skipped = [
                {"lead_id": v.lead_id, "reason": "opted_out" if v.opted_out else "no_device"}
                for v in leads
                if v.opted_out or not v.device_id
            ]
            leads = [v for v in leads if not v.opted_out and v.device_id]
        await core.caught_up(SEQUENCES)
        result = await core.enroller.enroll(sequence, leads, "api", core.clock.now())
        await core.read_own(result.seq)
        data: dict[str, Any] = (
            {
                "matched": len(leads),
                "enrolled": len(result.enrolled),
                "already": len(result.already),
            }
            if isinstance(command, EnrollLeadsByFilter)
            else {"enrolled": result.enrolled, "already": result.already, "skipped": skipped}
        )
        return self._ok(result.seq, sequence.sequence_id, **data)

    async def _known_leads(self, tenant_id: str, lead_ids: list[str]) -> list[LeadView]:
        wanted = list(dict.fromkeys(check_token(i, "lead id") for i in lead_ids))
        if not wanted:
            raise Refused("no_leads", "Name at least one lead", 422)
        keys = [(tenant_id, i) for i in wanted]
        found = await self.core.lookups.leads(keys)
        if len(found) < len(keys):
            await self.core.caught_up(LEADS)
            found = await self.core.lookups.leads(keys)
        unknown = [i for i in wanted if (tenant_id, i) not in found or found[tenant_id, i].deleted]
        if unknown:
            raise Refused(
                "unknown_leads",
                "Some leads do not exist",
                422,
                f"unknown lead ids: {', '.join(unknown[:20])}",
                errors=[{"lead_id": i, "reason": "unknown lead"} for i in unknown],
            )
        return [found[k] for k in keys]

    async def _one_enrollment(
        self, command: RemoveEnrollment | PauseEnrollment | ResumeEnrollment
    ) -> Reply:
        core = self.core
        check_token(command.lead_id, "lead id")
        state, _ = await core.sequence(command.tenant_id, check_token(command.sequence_id))
        if state is None:
            raise not_found("sequence", command.sequence_id)
        await core.caught_up(SEQUENCES)
        latest = await core.lookups.latest(command.tenant_id, state.sequence_id, [command.lead_id])
        snap = latest.get(command.lead_id)
        if snap is None or not snap.state.running:
            raise Refused(
                "not_enrolled",
                "The lead is not in this sequence",
                404,
                f"lead {command.lead_id} has no running enrollment in {command.sequence_id}",
            )
        now = core.clock.now()
        if isinstance(command, RemoveEnrollment):
            outcome = await core.remove([snap], command.reason)
        else:
            decide = rules.pause if isinstance(command, PauseEnrollment) else rules.resume
            outcome = await core.runs.decide(
                command.tenant_id,
                snap.state.enrollment_id,
                lambda s: decide(s, "requested", now),
                snap,
            )
        await core.read_own(outcome.seq)
        return self._ok(outcome.seq, snap.state.enrollment_id)

    async def _remove_everywhere(self, command: RemoveLeadFromSequences) -> Reply:
        core = self.core
        check_token(command.lead_id, "lead id")
        await core.caught_up(SEQUENCES)
        running = await core.lookups.running_of_lead(command.tenant_id, command.lead_id)
        outcome = await core.remove(running, command.reason)
        await core.read_own(outcome.seq)
        return self._ok(outcome.seq, command.lead_id, removed=outcome.changed)

    def _ok(self, seq: int, ident: str, **data: Any) -> Reply:
        return Reply(ok=True, seq=seq, stream=self.stream if seq else "", id=ident, data=data)


def _new_id(command: CreateSequence) -> str:
    """The client's id; else one derived from its idempotency key (a retry finds it)."""
    if command.sequence_id:
        return command.sequence_id
    if command.idempotency_key:
        digest = hashlib.sha256(f"{command.tenant_id}\x1f{command.idempotency_key}".encode())
        return "s" + digest.hexdigest()[:24]
    return "s" + uuid.uuid4().hex[:24]
