"""`/api/v1/campaigns`: create (and trigger), schedule, trigger, pause, resume, cancel;
status and counts, the per-device report and the message list behind every count."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from wacast.api_gateway.domain.campaigns.schemas import (
    CampaignCreate,
    CampaignResult,
    Reasoned,
    Schedule,
)
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
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts.commands import (
    CancelCampaign,
    CreateCampaign,
    PauseCampaign,
    ResumeCampaign,
    ScheduleCampaign,
    TriggerCampaign,
)

STREAM = "CAMPAIGNS"
WRITE = responses(404, 409, 503, 504)


def aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ApiProblem(422, detail="schedule_at needs a time zone (RFC 3339, e.g. ...Z)")
    return when


class CampaignController(Controller):
    path = "/campaigns"
    tags = ["campaigns"]

    @post("/", status_code=201, responses=WRITE, summary="Create a campaign")
    async def create(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        data: JSONBody[CampaignCreate],
    ) -> Response[CampaignResult]:
        """Created `pending`; without `schedule_at` it is triggered at once. When that
        trigger is refused (e.g. no connected device among its targets) the campaign is
        answered `failed` with the refusal's code as `failure_reason`."""
        campaign_id = new_id("cmp", who, idem, "/campaigns")
        schedule_at = aware(data.schedule_at) if data.schedule_at is not None else None
        created = await gw.send(
            build(
                CreateCampaign,
                who,
                f"{idem}:create" if idem else "",
                campaign_id=campaign_id,
                name=data.name,
                audience=data.audience,
                message=data.message,
                schedule_at=schedule_at,
                pacing=data.pacing,
                retry=data.retry,
                send_window=data.send_window,
            )
        )
        campaign_id = created.id or campaign_id
        found = await read_back(
            gw,
            q.CAMPAIGN,
            q.GetOne(
                tenant_id=who.tenant_id, id=campaign_id, after_seq=created.seq, after_stream=STREAM
            ),
            q.Campaign,
        )
        if found is None:
            now = gw.clock.now()
            found = q.Campaign(
                id=campaign_id,
                name=data.name,
                status="pending",
                audience=data.audience,
                message=data.message,
                pacing=data.pacing,
                send_window=data.send_window,
                schedule_at=schedule_at,
                counts=q.CampaignCounts(),
                created_at=now,
                updated_at=now,
            )
        reply = created
        if schedule_at is None:
            trigger = build(
                TriggerCampaign, who, f"{idem}:trigger" if idem else "", campaign_id=campaign_id
            )
            reply = await gw.requester.send(trigger)
            if not reply.ok:
                refusal = ApiProblem.of_reply(reply)
                if refusal.status >= 500:
                    raise refusal
                # Created, and failed at once (e.g. no connected device): say so.
                found = msgspec.structs.replace(
                    found, status="failed", failure_reason=refusal.code, failed_at=gw.clock.now()
                )
                reply = created
        stream = stream_key(gw, reply, STREAM)
        return Response(
            with_write(found, CampaignResult, reply, stream),
            status_code=201,
            headers={
                **write_headers(reply, stream),
                "Location": f"/api/v1/campaigns/{campaign_id}",
            },
        )

    @get("/", responses=responses(503, 504), summary="List campaigns")
    async def list_campaigns(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        read: ReadDep,
        status: FromQuery[q.CampaignStatus | None] = None,
    ) -> q.CampaignPage:
        """Newest first, with status and counts."""
        return await gw.ask(
            q.CAMPAIGNS,
            q.ListCampaigns(
                tenant_id=who.tenant_id,
                status=status,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.CampaignPage,
        )

    @get("/{campaign_id:str}", responses=responses(404, 503, 504), summary="Get a campaign")
    async def get_campaign(
        self, gw: GatewayDep, who: PrincipalDep, campaign_id: FromPath[str], read: ReadDep
    ) -> q.Campaign:
        """Status, counts (failures by reason), percentage, times and ETA."""
        return await gw.ask(
            q.CAMPAIGN,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(campaign_id, "campaign"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.Campaign,
        )

    @get(
        "/{campaign_id:str}/report",
        responses=responses(404, 503, 504),
        summary="Per-device report",
    )
    async def report(
        self, gw: GatewayDep, who: PrincipalDep, campaign_id: FromPath[str], read: ReadDep
    ) -> q.CampaignReport:
        """One row per device: total, pending, success (sent, delivered or read), failed."""
        return await gw.ask(
            q.CAMPAIGN_REPORT,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(campaign_id, "campaign"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.CampaignReport,
        )

    @get(
        "/{campaign_id:str}/messages",
        responses=responses(404, 503, 504),
        summary="The messages behind the counts",
    )
    async def messages(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        campaign_id: FromPath[str],
        page: PageDep,
        read: ReadDep,
        status: Annotated[
            q.MessageFilter | None,
            QueryParameter(
                description="`pending` (pending or queued), `success` (sent, delivered or "
                "read), `failed`, or a precise status"
            ),
        ] = None,
        device_id: Annotated[str, QueryParameter(max_length=128)] = "",
    ) -> q.MessagePage:
        """With lead name and phone, device name, status, failure reason and times."""
        return await gw.ask(
            q.CAMPAIGN_MESSAGES,
            q.ListCampaignMessages(
                tenant_id=who.tenant_id,
                campaign_id=existing_id(campaign_id, "campaign"),
                status=status,
                device_id=device_id,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.MessagePage,
        )

    @post("/{campaign_id:str}/trigger", status_code=202, responses=WRITE, summary="Trigger now")
    async def trigger(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, campaign_id: FromPath[str]
    ) -> Response[Accepted]:
        """Start a pending campaign now; a campaign triggers once (409 after that)."""
        campaign_id = existing_id(campaign_id, "campaign")
        reply = await gw.send(build(TriggerCampaign, who, idem, campaign_id=campaign_id))
        return accepted(gw, reply, campaign_id, STREAM)

    @post("/{campaign_id:str}/schedule", status_code=202, responses=WRITE, summary="Schedule")
    async def schedule(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        campaign_id: FromPath[str],
        data: JSONBody[Schedule],
    ) -> Response[Accepted]:
        """Trigger a pending campaign at `schedule_at` (set or moved)."""
        campaign_id = existing_id(campaign_id, "campaign")
        reply = await gw.send(
            build(
                ScheduleCampaign,
                who,
                idem,
                campaign_id=campaign_id,
                schedule_at=aware(data.schedule_at),
            )
        )
        return accepted(gw, reply, campaign_id, STREAM)

    @post("/{campaign_id:str}/pause", status_code=202, responses=WRITE, summary="Pause")
    async def pause(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        campaign_id: FromPath[str],
        data: JSONBody[Reasoned | None] = None,
    ) -> Response[Accepted]:
        campaign_id = existing_id(campaign_id, "campaign")
        reason = data.reason if data is not None else ""
        reply = await gw.send(
            build(PauseCampaign, who, idem, campaign_id=campaign_id, reason=reason)
        )
        return accepted(gw, reply, campaign_id, STREAM)

    @post("/{campaign_id:str}/resume", status_code=202, responses=WRITE, summary="Resume")
    async def resume(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, campaign_id: FromPath[str]
    ) -> Response[Accepted]:
        campaign_id = existing_id(campaign_id, "campaign")
        reply = await gw.send(build(ResumeCampaign, who, idem, campaign_id=campaign_id))
        return accepted(gw, reply, campaign_id, STREAM)

    @post("/{campaign_id:str}/cancel", status_code=202, responses=WRITE, summary="Cancel")
    async def cancel(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        campaign_id: FromPath[str],
        data: JSONBody[Reasoned | None] = None,
    ) -> Response[Accepted]:
        """Stops for good: messages still waiting fail as `campaign_cancelled`."""
        campaign_id = existing_id(campaign_id, "campaign")
        reason = data.reason if data is not None else ""
        reply = await gw.send(
            build(CancelCampaign, who, idem, campaign_id=campaign_id, reason=reason)
        )
        return accepted(gw, reply, campaign_id, STREAM)
