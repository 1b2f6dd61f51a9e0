"""`/api/v1/webhooks`: create (the secret is shown once), list, get, delete; the delivery
log of an endpoint and replaying one delivery. The webhook-service owns all of it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from wacast.api_gateway.domain.common import (
    Accepted,
    GatewayDep,
    IdempotencyDep,
    PageDep,
    PrincipalDep,
    accepted,
    build,
    existing_id,
    new_id,
    write_headers,
)
from wacast.api_gateway.domain.webhooks.schemas import (
    EventTypes,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    public,
)
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import webhooks as wh

Q = TypeVar("Q", bound=wh.WebhookQuery)
STREAM = "WEBHOOKS"
WRITE = responses(404, 409, 422, 503, 504)
AfterSeq = Annotated[
    int,
    QueryParameter(
        ge=0,
        le=2**63 - 1,
        description="Wait (up to about 2 s) until this `seq` of a webhook write is applied",
    ),
]


def query(cls: type[Q], **fields: Any) -> Q:
    """The query, validated; a malformed cursor is 422."""
    try:
        return cls(**fields)
    except (ValueError, TypeError) as exc:
        raise ApiProblem(422, detail=str(exc)) from None


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @post("/", status_code=201, responses=WRITE, summary="Create a webhook")
    async def create(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        data: JSONBody[WebhookCreate],
    ) -> Response[WebhookCreated]:
        """Deliveries are signed (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
        `webhook-signature`), retried with backoff, logged, and replayable."""
        webhook_id = new_id("wh", who, idem, "/webhooks")
        command = build(
            wh.CreateWebhook,
            who,
            idem,
            webhook_id=webhook_id,
            url=data.url,
            event_types=data.events,
            description=data.description,
        )
        reply = await gw.send(command)
        webhook_id = reply.id or webhook_id
        created_at = reply.data.get("created_at")
        body = WebhookCreated(
            id=webhook_id,
            url=command.url,
            events=command.event_types,
            description=command.description,
            secret=str(reply.data.get("secret", "")),
            created_at=datetime.fromisoformat(created_at) if created_at else gw.clock.now(),
            seq=reply.seq,
            stream=STREAM,
        )
        return Response(
            body,
            status_code=201,
            headers={
                **write_headers(reply, STREAM),
                "Location": f"/api/v1/webhooks/{webhook_id}",
                "Cache-Control": "no-store",
            },
        )

    @get("/", responses=responses(503, 504), summary="List webhooks")
    async def list_webhooks(
        self, gw: GatewayDep, who: PrincipalDep, page: PageDep, after_seq: AfterSeq = 0
    ) -> WebhookPage:
        found = await gw.ask(
            wh.LIST_QUERY,
            query(
                wh.ListWebhooks,
                tenant_id=who.tenant_id,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=after_seq,
            ),
            wh.WebhookPage,
        )
        return WebhookPage(items=[public(w) for w in found.items], next_cursor=found.next_cursor)

    @get("/event-types", responses=responses(), summary="Event types a webhook can take")
    async def event_types(self) -> EventTypes:
        return EventTypes(items=list(wh.CATALOG))

    @get("/{webhook_id:str}", responses=responses(404, 503, 504), summary="Get a webhook")
    async def get_webhook(
        self, gw: GatewayDep, who: PrincipalDep, webhook_id: FromPath[str], after_seq: AfterSeq = 0
    ) -> Webhook:
        found = await gw.ask(
            wh.GET_QUERY,
            query(
                wh.GetWebhook,
                tenant_id=who.tenant_id,
                webhook_id=existing_id(webhook_id, "webhook"),
                after_seq=after_seq,
            ),
            wh.Webhook,
        )
        return public(found)

    @delete("/{webhook_id:str}", status_code=202, responses=WRITE, summary="Delete a webhook")
    async def delete_webhook(
        self, gw: GatewayDep, who: PrincipalDep, webhook_id: FromPath[str]
    ) -> Response[Accepted]:
        """Nothing more is delivered to it; what was pending is cancelled."""
        webhook_id = existing_id(webhook_id, "webhook")
        reply = await gw.send(build(wh.DeleteWebhook, who, webhook_id=webhook_id))
        return accepted(gw, reply, webhook_id, STREAM)

    @get(
        "/{webhook_id:str}/deliveries",
        responses=responses(404, 503, 504),
        summary="The delivery log of a webhook",
    )
    async def deliveries(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        webhook_id: FromPath[str],
        status: FromQuery[
            Annotated[wh.DeliveryStatus | None, QueryParameter(description="Only this status")]
        ] = None,
        after_seq: AfterSeq = 0,
    ) -> wh.DeliveryPage:
        """Newest first: each source event for this endpoint, its tries and last answer."""
        return await gw.ask(
            wh.DELIVERIES_QUERY,
            query(
                wh.ListDeliveries,
                tenant_id=who.tenant_id,
                webhook_id=existing_id(webhook_id, "webhook"),
                status=status,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=after_seq,
            ),
            wh.DeliveryPage,
        )

    @post(
        "/{webhook_id:str}/deliveries/{delivery_id:str}/replay",
        status_code=202,
        responses=WRITE,
        summary="Send a delivery again",
    )
    async def replay(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        webhook_id: FromPath[str],
        delivery_id: FromPath[str],
    ) -> Response[Accepted]:
        """A dead or delivered delivery goes out again from its first try, with the same
        `webhook-id` (409 while it is pending)."""
        reply = await gw.send(
            build(
                wh.ReplayWebhookDelivery,
                who,
                idem,
                webhook_id=existing_id(webhook_id, "webhook"),
                delivery_id=existing_id(delivery_id, "delivery"),
            )
        )
        return accepted(gw, reply, delivery_id, STREAM)
