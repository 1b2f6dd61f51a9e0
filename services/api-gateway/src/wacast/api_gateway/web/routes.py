"""The dashboard's routes: pages (`/app/...`), static files, and `/app/api/monitoring`.

Pages carry no tenant data: the server renders the layout, forms and empty states, and
the page's script fills them from `/api/v1` with the key kept in `sessionStorage` (so the
server never holds a session). Templates render with the Jinja engine of
`TEMPLATE_CONFIG`, so the router works in any Litestar app without an app-level template
configuration.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.middleware import DefineMiddleware
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from wacast.api_gateway.auth import ApiKeyAuth
from wacast.api_gateway.domain.common import existing_id, principal
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.web.monitoring import Monitoring, default_reader
from wacast.contracts import queries as q

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TEMPLATE_CONFIG = TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: https: http:",
        "media-src 'self' blob: https: http:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NAV = [
    ("devices", "Devices", "/app/devices"),
    ("leads", "Leads", "/app/leads"),
    ("campaigns", "Campaigns", "/app/campaigns"),
    ("sequences", "Sequences", "/app/sequences"),
    ("monitoring", "Monitoring", "/app/monitoring"),
    ("webhooks", "Webhooks", "/app/webhooks"),
    ("settings", "Settings", "/app/settings"),
]


def static_version() -> str:
    """A digest of the static files, appended to their URLs so a new release is fetched."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


VERSION = static_version()


def render(template: str, **context: Any) -> Response[str]:
    html = TEMPLATE_CONFIG.engine_instance.get_template(template).render(
        nav=NAV, version=VERSION, **context
    )
    return Response(html, media_type=MediaType.HTML, headers=PAGE_HEADERS)


def page(template: str, title: str, section: str, name: str = "", **context: Any) -> Response[str]:
    """`section` lights its entry in the navigation; `name` picks the page's script."""
    return render(template, title=title, section=section, page_name=name or section, **context)


@get("/", include_in_schema=False, sync_to_thread=False)
def home() -> Redirect:
    return Redirect("/app/devices")


@get("/app", include_in_schema=False, sync_to_thread=False)
def app_home() -> Redirect:
    return Redirect("/app/devices")


@get("/app/sign-in", include_in_schema=False, sync_to_thread=False)
def sign_in() -> Response[str]:
    return page("sign_in.html", "Sign in", "sign-in")


@get("/app/devices", include_in_schema=False, sync_to_thread=False)
def devices() -> Response[str]:
    return page("devices.html", "Devices", "devices")


@get("/app/leads", include_in_schema=False, sync_to_thread=False)
def leads() -> Response[str]:
    return page("leads.html", "Leads", "leads")


@get("/app/leads/{lead_id:str}", include_in_schema=False, sync_to_thread=False)
def lead(lead_id: FromPath[str]) -> Response[str]:
    return page("lead.html", "Lead", "leads", "lead", lead_id=existing_id(lead_id, "lead"))


@get("/app/settings", include_in_schema=False, sync_to_thread=False)
def settings() -> Response[str]:
    return page("settings.html", "Settings", "settings")


@get("/app/webhooks", include_in_schema=False, sync_to_thread=False)
def webhooks() -> Response[str]:
    return page("webhooks.html", "Webhooks", "webhooks")


@get("/app/campaigns", include_in_schema=False, sync_to_thread=False)
def campaigns() -> Response[str]:
    return page("campaigns.html", "Campaigns", "campaigns")


@get("/app/campaigns/new", include_in_schema=False, sync_to_thread=False)
def campaign_new() -> Response[str]:
    return page("campaign_new.html", "New campaign", "campaigns", "campaign-new")


@get("/app/campaigns/{campaign_id:str}", include_in_schema=False, sync_to_thread=False)
def campaign_report(campaign_id: FromPath[str]) -> Response[str]:
    return page(
        "campaign_report.html",
        "Campaign report",
        "campaigns",
        "campaign-report",
        campaign_id=existing_id(campaign_id, "campaign"),
    )


@get("/app/sequences", include_in_schema=False, sync_to_thread=False)
def sequences() -> Response[str]:
    return page("sequences.html", "Sequences", "sequences")


@get("/app/sequences/new", include_in_schema=False, sync_to_thread=False)
def sequence_new() -> Response[str]:
    return page("sequence_new.html", "New sequence", "sequences", "sequence-new")


@get("/app/sequences/{sequence_id:str}", include_in_schema=False, sync_to_thread=False)
def sequence_detail(sequence_id: FromPath[str]) -> Response[str]:
    return page(
        "sequence_detail.html",
        "Sequence",
        "sequences",
        "sequence-detail",
        sequence_id=existing_id(sequence_id, "sequence"),
    )


@get("/app/monitoring", include_in_schema=False, sync_to_thread=False)
def monitoring_page() -> Response[str]:
    return page("monitoring.html", "Monitoring", "monitoring")


def web_router(gw: Gateway) -> Router:
    """Every route of the dashboard. `gw` authenticates `/app/api/*` like `/api/v1`."""
    reader = default_reader(
        str(getattr(gw.settings, "monitoring_urls", "") or ""), gw.settings.http_host
    )

    @get("/monitoring", include_in_schema=False)
    async def monitoring(request: Request[Any, Any, Any]) -> Monitoring:
        """The tenant's overview and the system's live numbers (see `web.monitoring`)."""
        who = principal(request)
        tenant = await gw.ask(q.OVERVIEW, q.Query(tenant_id=who.tenant_id), q.Overview)
        return Monitoring(at=gw.clock.now(), tenant=tenant, system=await reader.read())

    api = Router(
        path="/app/api",
        route_handlers=[monitoring],
        middleware=[DefineMiddleware(ApiKeyAuth, gw=gw)],
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/app/static",
        directories=[STATIC],
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
    )
    return Router(
        path="/",
        route_handlers=[
            home,
            app_home,
            sign_in,
            devices,
            leads,
            lead,
            settings,
            webhooks,
            campaigns,
            campaign_new,
            campaign_report,
            sequences,
            sequence_new,
            sequence_detail,
            monitoring_page,
            api,
            static,
        ],
        include_in_schema=False,
    )
