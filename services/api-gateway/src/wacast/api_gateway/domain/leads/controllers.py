"""`/api/v1/leads`: create, list and filter, detail, conversation, update, delete, opt-out,
CSV import."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, MultipartBody, QueryParameter

from wacast.api_gateway.auth import Principal
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
from wacast.api_gateway.domain.leads.schemas import (
    ImportAccepted,
    LeadCreate,
    LeadResult,
    LeadUpdate,
    OptOut,
)
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts.base import Reply
from wacast.contracts.commands import (
    CreateLead,
    DeleteLead,
    EraseLead,
    ImportLeads,
    OptInLead,
    OptOutLead,
    UpdateLead,
)
from wacast.contracts.streams import MEDIA_BUCKET
from wacast.contracts.values import LeadStatus

STREAM = "LEADS"
WRITE = responses(404, 409, 503, 504)
LEAD_FIELDS = set(q.Lead.__struct_fields__)


def as_lead(detail: q.LeadDetail) -> q.Lead:
    fields = {k: v for k, v in msgspec.structs.asdict(detail).items() if k in LEAD_FIELDS}
    return q.Lead(**fields)


async def lead_after(gw: Gateway, who: Principal, lead_id: str, reply: Reply) -> q.Lead | None:
    found = await read_back(
        gw,
        q.LEAD,
        q.GetOne(tenant_id=who.tenant_id, id=lead_id, after_seq=reply.seq, after_stream=STREAM),
        q.LeadDetail,
    )
    return None if found is None else as_lead(found)


def lead_result(
    gw: Gateway, found: q.Lead, reply: Reply, status: int = 200
) -> Response[LeadResult]:
    stream = stream_key(gw, reply, STREAM)
    return Response(
        with_write(found, LeadResult, reply, stream),
        status_code=status,
        headers=write_headers(reply, stream),
    )


async def replay_created(gw: Gateway, who: Principal, kept: dict[str, Any]) -> bytes | None:
    """The body of a replayed `POST /leads`, whose remembered reply keeps no personal data:
    the lead as the read model has it now (None once it is deleted or erased)."""
    lead_id, seq, stream = kept.get("id"), kept.get("seq"), kept.get("stream")
    if not isinstance(lead_id, str) or not isinstance(seq, int) or not isinstance(stream, str):
        return None
    reply = Reply(ok=True, seq=seq, stream=stream, id=lead_id)
    found = await lead_after(gw, who, lead_id, reply)
    if found is None:
        return None
    return msgspec.json.encode(with_write(found, LeadResult, reply, stream))


class LeadController(Controller):
    path = "/leads"
    tags = ["leads"]

    @post("/", status_code=201, responses=WRITE, summary="Create a lead")
    async def create(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, data: JSONBody[LeadCreate]
    ) -> Response[LeadResult]:
        """One lead per phone per tenant: a phone that exists already is 409."""
        lead_id = new_id("lead", who, idem, "/leads")
        reply = await gw.send(
            build(
                CreateLead,
                who,
                idem,
                lead_id=lead_id,
                phone=data.phone,
                name=data.name,
                device_id=data.device_id,
                status=data.status,
                tags=data.tags,
                attributes=data.attributes,
            )
        )
        lead_id = reply.id or lead_id
        found = await lead_after(gw, who, lead_id, reply)
        if found is None:
            now = gw.clock.now()
            found = q.Lead(
                id=lead_id,
                phone=str(reply.data.get("phone", data.phone)),
                name=data.name,
                device_id=str(reply.data.get("device_id", data.device_id)),
                status=data.status,
                tags=data.tags,
                attributes=data.attributes,
                created_at=now,
                updated_at=now,
            )
        response = lead_result(gw, found, reply, 201)
        response.headers["Location"] = f"/api/v1/leads/{lead_id}"
        return response

    @get("/", responses=responses(503, 504), summary="List leads")
    async def list_leads(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        read: ReadDep,
        status: FromQuery[LeadStatus | None] = None,
        tag: Annotated[str, QueryParameter(max_length=64, description="Leads with this tag")] = "",
        device_id: Annotated[str, QueryParameter(max_length=128)] = "",
        search: Annotated[
            str, QueryParameter(max_length=100, description="Part of the name or the phone")
        ] = "",
        opted_out: FromQuery[bool | None] = None,
    ) -> q.LeadPage:
        """Newest first."""
        return await gw.ask(
            q.LEADS,
            q.ListLeads(
                tenant_id=who.tenant_id,
                status=status,
                tag=tag,
                device_id=device_id,
                search=search,
                opted_out=opted_out,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.LeadPage,
        )

    @get("/{lead_id:str}", responses=responses(404, 503, 504), summary="Get a lead")
    async def get_lead(
        self, gw: GatewayDep, who: PrincipalDep, lead_id: FromPath[str], read: ReadDep
    ) -> q.LeadDetail:
        """With every campaign and sequence message it got, and its enrollments."""
        return await gw.ask(
            q.LEAD,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(lead_id, "lead"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.LeadDetail,
        )

    @get(
        "/{lead_id:str}/conversation",
        responses=responses(404, 503, 504),
        summary="A lead's conversation",
    )
    async def conversation(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        lead_id: FromPath[str],
        page: PageDep,
        read: ReadDep,
    ) -> q.ConversationPage:
        """Messages sent to the lead and what it wrote back. The first page holds the latest
        `limit` entries, oldest first; `next_cursor` pages further back in time."""
        return await gw.ask(
            q.LEAD_CONVERSATION,
            q.GetLeadConversation(
                tenant_id=who.tenant_id,
                lead_id=existing_id(lead_id, "lead"),
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.ConversationPage,
        )

    @patch("/{lead_id:str}", responses=WRITE, summary="Update a lead")
    async def update(
        self, gw: GatewayDep, who: PrincipalDep, lead_id: FromPath[str], data: JSONBody[LeadUpdate]
    ) -> Response[LeadResult]:
        lead_id = existing_id(lead_id, "lead")
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        if not changes:
            raise ApiProblem(422, detail="give at least one field to change")
        reply = await gw.send(build(UpdateLead, who, lead_id=lead_id, **changes))
        found = await lead_after(gw, who, lead_id, reply)
        if found is None:
            found = as_lead(
                await gw.ask(q.LEAD, q.GetOne(tenant_id=who.tenant_id, id=lead_id), q.LeadDetail)
            )
        return lead_result(gw, found, reply)

    @delete("/{lead_id:str}", status_code=202, responses=WRITE, summary="Delete a lead")
    async def delete_lead(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        lead_id: FromPath[str],
        erase: Annotated[
            bool, QueryParameter(description="Also purge every trace of its personal data")
        ] = False,
    ) -> Response[Accepted]:
        lead_id = existing_id(lead_id, "lead")
        command = EraseLead if erase else DeleteLead
        reply = await gw.send(build(command, who, lead_id=lead_id))
        return accepted(gw, reply, lead_id, STREAM)

    @post("/{lead_id:str}/opt-out", status_code=202, responses=WRITE, summary="Opt a lead out")
    async def opt_out(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        lead_id: FromPath[str],
        data: JSONBody[OptOut | None] = None,
    ) -> Response[Accepted]:
        """The lead gets nothing more, from any campaign or sequence, until opted in."""
        lead_id = existing_id(lead_id, "lead")
        reason = data.reason if data is not None else ""
        reply = await gw.send(build(OptOutLead, who, idem, lead_id=lead_id, reason=reason))
        return accepted(gw, reply, lead_id, STREAM)

    @post("/{lead_id:str}/opt-in", status_code=202, responses=WRITE, summary="Opt a lead in")
    async def opt_in(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, lead_id: FromPath[str]
    ) -> Response[Accepted]:
        lead_id = existing_id(lead_id, "lead")
        reply = await gw.send(build(OptInLead, who, idem, lead_id=lead_id))
        return accepted(gw, reply, lead_id, STREAM)

    @post(
        "/import",
        status_code=202,
        responses=responses(413, 503, 504),
        summary="Import leads from a CSV file",
        request_max_body_size=None,
    )
    async def import_csv(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        request: Request[Any, Any, Any],
        data: MultipartBody[dict[str, Any]],
    ) -> Response[ImportAccepted]:
        """Multipart form: `file` (CSV with a header row: phone, and optionally name,
        status, tags separated by `;`, device_id), and defaults for rows without their own:
        `device_id`, `status`, `tags` (comma-separated), `update_existing` (true/false)."""
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiProblem(422, detail="send the CSV as the multipart field `file`")
        content = await upload.read()
        if not content:
            raise ApiProblem(422, detail="the CSV file is empty")
        if len(content) > gw.settings.max_upload_bytes:
            raise ApiProblem(413)
        import_id = new_id("imp", who, idem, "/leads/import")
        object_name = f"uploads/{who.tenant_id}/{import_id}.csv"
        bucket = await gw.nc.jetstream().object_store(gw.topology.bucket(MEDIA_BUCKET))
        await bucket.put(object_name, content)
        tags = [t.strip() for t in str(data.get("tags", "")).split(",") if t.strip()]
        command = build(
            ImportLeads,
            who,
            idem,
            filename=(upload.filename or "leads.csv")[:200],
            object_name=object_name,
            device_id=str(data.get("device_id", "")),
            status=str(data.get("status", "prospect")),
            tags=tags,
            update_existing=str(data.get("update_existing", "")).lower() in ("1", "true", "yes"),
            import_id=import_id,
        )
        reply = await gw.send(command)
        stream = stream_key(gw, reply, STREAM)
        return Response(
            ImportAccepted(import_id=reply.id or import_id, seq=reply.seq, stream=stream),
            status_code=202,
            headers={
                **write_headers(reply, stream),
                "Location": f"/api/v1/leads/imports/{reply.id or import_id}",
            },
        )

    @get("/imports/{import_id:str}", responses=responses(404, 503, 504), summary="Import progress")
    async def get_import(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        import_id: FromPath[str],
        read: ReadDep,
        errors_cursor: Annotated[str, QueryParameter(max_length=200)] = "",
        errors_limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> q.LeadImport:
        """Rows done, created, updated, failed, and the failed rows (paged)."""
        return await gw.ask(
            q.LEAD_IMPORT,
            q.GetLeadImport(
                tenant_id=who.tenant_id,
                id=existing_id(import_id, "import"),
                errors_cursor=errors_cursor,
                errors_limit=errors_limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.LeadImport,
        )
