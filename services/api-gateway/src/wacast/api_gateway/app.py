"""The Litestar application: `/api/v1` resources, the live socket, health, OpenAPI.

Built from a `Gateway` (connections, key index, live hub...) so that tests build it against
their own NATS namespace and the process host against the real one.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router, WebSocket, websocket
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Server, Tag

from wacast.api_gateway.auth import ApiKeyAuth, Principal
from wacast.api_gateway.domain.account.controllers import (
    KeyController,
    OverviewController,
    SettingsController,
)
from wacast.api_gateway.domain.campaigns.controllers import CampaignController
from wacast.api_gateway.domain.common import (
    GatewayDep,
    consistency,
    idempotency_key,
    paging,
    principal,
)
from wacast.api_gateway.domain.devices.controllers import DeviceController
from wacast.api_gateway.domain.leads.controllers import LeadController, replay_created
from wacast.api_gateway.domain.media.controllers import MediaController
from wacast.api_gateway.domain.sequences.controllers import SequenceController
from wacast.api_gateway.domain.webhooks.controllers import WebhookController
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.idempotency import IdempotencyMiddleware
from wacast.api_gateway.limits import UploadLimit
from wacast.api_gateway.live import serve_socket
from wacast.api_gateway.problems import EXCEPTION_HANDLERS, ApiProblem
from wacast.api_gateway.web import web_router
from wacast.runtime.health import health_handlers

API_VERSION = "1.0.0"
DESCRIPTION = """\
The wacast public API: WhatsApp broadcast campaigns and drip sequences.

Authenticate with `Authorization: Bearer <API key>`. Errors are RFC 9457 problem details.
Lists answer `{items, next_cursor}`; pass `next_cursor` back as `cursor`. Every write answers
with `seq` and `stream` (also in the `Wacast-Seq` and `Wacast-Stream` headers); pass them to
a read as `?after_seq=&after_stream=` to read your own write. See docs/API.md.
"""


@websocket("/live", summary="Live updates")
async def live_socket(socket: WebSocket[Any, Any, Any], gw: GatewayDep) -> None:
    """Device status changes, QR codes, campaign and sequence progress, heartbeats (JSON
    text frames, `type` tells which). The key may come as `?access_token=`."""
    user = socket.scope.get("user")
    if not isinstance(user, Principal):
        raise ApiProblem(401)
    await serve_socket(socket, gw.live, user.tenant_id, gw.settings.live_heartbeat_seconds)


def create_app(gw: Gateway, *, extra_handlers: list[Any] | None = None) -> Litestar:
    settings = gw.settings
    api = Router(
        path="/api/v1",
        route_handlers=[
            DeviceController,
            LeadController,
            MediaController,
            CampaignController,
            SequenceController,
            WebhookController,
            OverviewController,
            KeyController,
            SettingsController,
            live_socket,
        ],
        security=[{"ApiKey": []}],
        middleware=[
            DefineMiddleware(UploadLimit, max_bytes=settings.max_upload_bytes),
            DefineMiddleware(ApiKeyAuth, gw=gw),
            DefineMiddleware(
                IdempotencyMiddleware, gw=gw, redacted={"/api/v1/leads": replay_created}
            ),
        ],
    )

    def gateway() -> Gateway:
        return gw

    cors = None
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        cors = CORSConfig(
            allow_origins=origins,
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Wacast-Seq", "Wacast-Stream", "Location", "Retry-After"],
        )
    return Litestar(
        route_handlers=[
            api,
            web_router(gw),
            *health_handlers("api-gateway", gw.checks),
            *(extra_handlers or []),
        ],
        dependencies={
            "gw": Provide(gateway, sync_to_thread=False),
            "who": Provide(principal, sync_to_thread=False),
            "page": Provide(paging, sync_to_thread=False),
            "read": Provide(consistency, sync_to_thread=False),
            "idem": Provide(idempotency_key, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        cors_config=cors,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="wacast API",
            version=API_VERSION,
            description=DESCRIPTION,
            path="/schema",
            servers=[Server(url="/")],
            tags=[
                Tag(name="devices", description="Linked WhatsApp accounts"),
                Tag(name="leads", description="Contacts, CSV imports"),
                Tag(name="media", description="Images, video, documents to send"),
                Tag(name="campaigns", description="Broadcasts and their reports"),
                Tag(name="sequences", description="Multi-step drips"),
                Tag(name="account", description="Overview and API keys"),
            ],
            components=Components(
                security_schemes={
                    "ApiKey": SecurityScheme(
                        type="http", scheme="bearer", description="An API key of the tenant"
                    )
                }
            ),
        ),
        logging_config=None,
        debug=False,
    )
