"""`/api/v1/sequences`: create with steps, enroll (by ids or filter), remove a contact,
activate, pause, archive; progress and enrollments."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from wacast.api_gateway.domain.common import (
    Accepted,
    GatewayDep,
    IdempotencyDep,
    PageDep,
    PrincipalDep,
    ReadDep,
    accepted,
    build,
    existing_id,
    new_id,
    read_back,
    stream_key,
    with_write,
    write_headers,
)
from wacast.api_gateway.domain.sequences.schemas import (
    Enrolled,
    EnrollmentCreate,
    SequenceCreate,
    SequenceResult,
    StepCreate,
)
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts.base import Reply
from wacast.contracts.commands import (
    ActivateSequence,
    ArchiveSequence,
    CreateSequence,
    EnrollLeads,
    EnrollLeadsByFilter,
    PauseSequence,
    RemoveEnrollment,
)
from wacast.contracts.values import Step

STREAM = "SEQUENCES"
WRITE = responses(404, 409, 503, 504)
ENROLL_CHUNK = 1000


def _count(value: object) -> int:
    """Owners answer counts, or the lists counted."""
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else 0


def steps_of(given: list[StepCreate]) -> list[Step]:
    """Steps with ids: given ones kept, missing ones `step-<n>` (n free and stable)."""
    taken = {s.id for s in given if s.id}
    steps: list[Step] = []
    n = 0
    for step in given:
        step_id = step.id
        while step_id is None:
            n += 1
            candidate = f"step-{n}"
            if candidate not in taken:
                step_id = candidate
                taken.add(candidate)
        try:
            steps.append(
                Step(
                    id=step_id,
                    delay_seconds=step.delay_seconds,
                    message=step.message,
                    window=step.window,
                )
            )
        except ValueError as exc:
            raise ApiProblem(422, detail=str(exc)) from None
    return steps


class SequenceController(Controller):
    path = "/sequences"
    tags = ["sequences"]

    @post("/", status_code=201, responses=WRITE, summary="Create a sequence")
    async def create(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        data: JSONBody[SequenceCreate],
    ) -> Response[SequenceResult]:
        """Steps go out through each lead's own device, paced like campaigns."""
        sequence_id = new_id("seq", who, idem, "/sequences")
        steps = steps_of(data.steps)
        reply = await gw.send(
            build(
                CreateSequence,
                who,
                idem,
                sequence_id=sequence_id,
                name=data.name,
                steps=steps,
                pacing=data.pacing,
                retry=data.retry,
                triggers=data.triggers,
                on_failure=data.on_failure,
                stop_on_reply=data.stop_on_reply,
                activate=data.status == "active",
            )
        )
        sequence_id = reply.id or sequence_id
        found = await read_back(
            gw,
            q.SEQUENCE,
            q.GetOne(
                tenant_id=who.tenant_id, id=sequence_id, after_seq=reply.seq, after_stream=STREAM
            ),
            q.Sequence,
        )
        if found is None:
            now = gw.clock.now()
            found = q.Sequence(
                id=sequence_id,
                name=data.name,
                status=data.status,
                steps=steps,
                pacing=data.pacing,
                triggers=data.triggers,
                on_failure=data.on_failure,
                stop_on_reply=data.stop_on_reply,
                progress=q.SequenceProgress(),
                created_at=now,
                updated_at=now,
            )
        stream = stream_key(gw, reply, STREAM)
        return Response(
            with_write(found, SequenceResult, reply, stream),
            status_code=201,
            headers={
                **write_headers(reply, stream),
                "Location": f"/api/v1/sequences/{sequence_id}",
            },
        )

    @get("/", responses=responses(503, 504), summary="List sequences")
    async def list_sequences(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        read: ReadDep,
        status: FromQuery[q.SequenceStatus | None] = None,
    ) -> q.SequencePage:
        """Newest first, with progress."""
        return await gw.ask(
            q.SEQUENCES,
            q.ListSequences(
                tenant_id=who.tenant_id,
                status=status,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.SequencePage,
        )

    @get("/{sequence_id:str}", responses=responses(404, 503, 504), summary="Get a sequence")
    async def get_sequence(
        self, gw: GatewayDep, who: PrincipalDep, sequence_id: FromPath[str], read: ReadDep
    ) -> q.Sequence:
        """With `progress`: enrolled, active, paused, completed, failed, removed, sent,
        percent."""
        return await gw.ask(
            q.SEQUENCE,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(sequence_id, "sequence"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.Sequence,
        )

    @get(
        "/{sequence_id:str}/enrollments",
        responses=responses(404, 503, 504),
        summary="List enrollments",
    )
    async def enrollments(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        sequence_id: FromPath[str],
        page: PageDep,
        read: ReadDep,
        status: FromQuery[q.EnrollmentStatus | None] = None,
    ) -> q.EnrollmentPage:
        """Each lead's place in the sequence: status, steps sent, next step and when."""
        return await gw.ask(
            q.ENROLLMENTS,
            q.ListEnrollments(
                tenant_id=who.tenant_id,
                sequence_id=existing_id(sequence_id, "sequence"),
                status=status,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.EnrollmentPage,
        )

    @post(
        "/{sequence_id:str}/enrollments", status_code=202, responses=WRITE, summary="Enroll leads"
    )
    async def enroll(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        sequence_id: FromPath[str],
        data: JSONBody[EnrollmentCreate],
    ) -> Response[Enrolled]:
        """By `lead_ids`, or by a `filter` on status, tags and devices (opted-out leads are
        never enrolled). A lead is in a sequence at most once at a time."""
        sequence_id = existing_id(sequence_id, "sequence")
        if bool(data.lead_ids) == (data.filter is not None):
            raise ApiProblem(422, detail="give either lead_ids or filter")
        if data.filter is not None:
            reply = await gw.send(
                build(EnrollLeadsByFilter, who, idem, sequence_id=sequence_id, filter=data.filter)
            )
            enrolled, already, skipped = (
                _count(reply.data.get(k)) for k in ("enrolled", "already", "skipped")
            )
        else:
            lead_ids = list(dict.fromkeys(data.lead_ids))
            for lead_id in lead_ids:
                existing_id(lead_id, "lead")
            enrolled = already = skipped = 0
            reply = Reply(ok=True)
            for start in range(0, len(lead_ids), ENROLL_CHUNK):
                chunk = lead_ids[start : start + ENROLL_CHUNK]
                key = f"{idem}:{start}" if idem else ""
                reply = await gw.send(
                    build(EnrollLeads, who, key, sequence_id=sequence_id, lead_ids=chunk)
                )
                enrolled += _count(reply.data.get("enrolled"))
                already += _count(reply.data.get("already"))
                skipped += _count(reply.data.get("skipped"))
        stream = stream_key(gw, reply, STREAM)
        return Response(
            Enrolled(
                sequence_id=sequence_id,
                enrolled=enrolled,
                already=already,
                skipped=skipped,
                seq=reply.seq,
                stream=stream,
            ),
            status_code=202,
            headers=write_headers(reply, stream),
        )

    @delete(
        "/{sequence_id:str}/enrollments/{lead_id:str}",
        status_code=202,
        responses=WRITE,
        summary="Remove a contact from the sequence",
    )
    async def remove(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        sequence_id: FromPath[str],
        lead_id: FromPath[str],
        reason: Annotated[str, QueryParameter(max_length=200)] = "requested",
    ) -> Response[Accepted]:
        """Its waiting messages are withdrawn; nothing more of the sequence is sent to it."""
        reply = await gw.send(
            build(
                RemoveEnrollment,
                who,
                sequence_id=existing_id(sequence_id, "sequence"),
                lead_id=existing_id(lead_id, "lead"),
                reason=reason or "requested",
            )
        )
        return accepted(gw, reply, sequence_id, STREAM)

    @post("/{sequence_id:str}/activate", status_code=202, responses=WRITE, summary="Activate")
    async def activate(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, sequence_id: FromPath[str]
    ) -> Response[Accepted]:
        sequence_id = existing_id(sequence_id, "sequence")
        reply = await gw.send(build(ActivateSequence, who, idem, sequence_id=sequence_id))
        return accepted(gw, reply, sequence_id, STREAM)

    @post("/{sequence_id:str}/pause", status_code=202, responses=WRITE, summary="Pause")
    async def pause(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, sequence_id: FromPath[str]
    ) -> Response[Accepted]:
        sequence_id = existing_id(sequence_id, "sequence")
        reply = await gw.send(build(PauseSequence, who, idem, sequence_id=sequence_id))
        return accepted(gw, reply, sequence_id, STREAM)

    @post("/{sequence_id:str}/archive", status_code=202, responses=WRITE, summary="Archive")
    async def archive(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, sequence_id: FromPath[str]
    ) -> Response[Accepted]:
        """Final: running enrollments are removed."""
        sequence_id = existing_id(sequence_id, "sequence")
        reply = await gw.send(build(ArchiveSequence, who, idem, sequence_id=sequence_id))
        return accepted(gw, reply, sequence_id, STREAM)
