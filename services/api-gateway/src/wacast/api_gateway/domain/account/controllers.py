"""`/api/v1/overview` (the tenant at a glance), `/api/v1/keys` (the tenant's API keys) and
`/api/v1/account/settings` (time zone, opt-out keywords, default daily cap, pacing)."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody
from msgspec import UNSET

from wacast.api_gateway.domain.account.schemas import (
    ApiKeyCreate,
    NewApiKey,
    TenantSettings,
    TenantSettingsResult,
    TenantSettingsUpdate,
)
from wacast.api_gateway.domain.common import (
    Accepted,
    GatewayDep,
    IdempotencyDep,
    PrincipalDep,
    ReadDep,
    accepted,
    build,
    existing_id,
    stream_key,
    with_write,
    write_headers,
)
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts import tenants as tn
from wacast.contracts.commands import ChangeTenantSettings, IssueApiKey, RevokeApiKey

STREAM = "TENANTS"


class OverviewController(Controller):
    path = "/overview"
    tags = ["account"]

    @get("/", responses=responses(503, 504), summary="The tenant at a glance")
    async def overview(self, gw: GatewayDep, who: PrincipalDep, read: ReadDep) -> q.Overview:
        """Devices, campaigns and sequences by status; leads; sends today."""
        return await gw.ask(
            q.OVERVIEW,
            q.Query(
                tenant_id=who.tenant_id, after_seq=read.after_seq, after_stream=read.after_stream
            ),
            q.Overview,
        )


class KeyController(Controller):
    path = "/keys"
    tags = ["account"]

    @get("/", responses=responses(), summary="List the tenant's API keys")
    async def list_keys(self, gw: GatewayDep, who: PrincipalDep) -> q.ApiKeyPage:
        """Revoked keys included (with `revoked_at`); secrets are never shown again."""
        return q.ApiKeyPage(items=[k.public() for k in gw.keys.of_tenant(who.tenant_id)])

    @post("/", status_code=201, responses=responses(409, 503, 504), summary="Issue an API key")
    async def issue(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, data: JSONBody[ApiKeyCreate]
    ) -> Response[NewApiKey]:
        if data.expires_at is not None and data.expires_at.tzinfo is None:
            raise ApiProblem(422, detail="expires_at needs a time zone (RFC 3339)")
        key = tn.new_api_key()
        reply = await gw.send(
            build(
                IssueApiKey,
                who,
                idem,
                key_id=tn.key_id_of(key),
                key_hash=tn.key_hash(key),
                name=data.name,
                prefix=tn.key_display_prefix(key),
                expires_at=data.expires_at,
            )
        )
        created = NewApiKey(
            id=tn.key_id_of(key),
            name=data.name,
            prefix=tn.key_display_prefix(key),
            created_at=gw.clock.now(),
            expires_at=data.expires_at,
            key=key,
            seq=reply.seq,
            stream=STREAM,
        )
        return Response(created, status_code=201, headers=write_headers(reply, STREAM))

    @delete("/{key_id:str}", status_code=202, responses=responses(404, 503, 504), summary="Revoke")
    async def revoke(
        self, gw: GatewayDep, who: PrincipalDep, key_id: FromPath[str]
    ) -> Response[Accepted]:
        """The key stops working on every replica within moments."""
        key_id = existing_id(key_id, "API key")
        reply = await gw.send(build(RevokeApiKey, who, key_id=key_id))
        return accepted(gw, reply, key_id, STREAM)


def public_settings(found: tn.TenantSettingsChanged) -> TenantSettings:
    return TenantSettings(
        name=found.name,
        timezone=found.timezone,
        default_region=found.default_region,
        opt_out_keywords=found.opt_out_keywords,
        device_daily_cap=found.device_daily_cap,
        pacing=found.pacing,
        updated_at=found.occurred_at,
    )


class SettingsController(Controller):
    path = "/account/settings"
    tags = ["account"]

    @get("/", responses=responses(404, 503, 504), summary="The tenant's settings")
    async def get_settings(self, gw: GatewayDep, who: PrincipalDep) -> TenantSettings:
        """Read from the tenant's own events: always current."""
        found = await gw.tenants.settings(who.tenant_id)
        if found is None:
            raise ApiProblem(404, detail="No such tenant")
        return public_settings(found)

    @put("/", responses=responses(404, 503, 504), summary="Change the tenant's settings")
    async def put_settings(
        self, gw: GatewayDep, who: PrincipalDep, data: JSONBody[TenantSettingsUpdate]
    ) -> Response[TenantSettingsResult]:
        """Fields left out keep their value. Opt-out keywords apply to replies from now on;
        the daily cap and time zone to the next sends."""
        current = await gw.tenants.settings(who.tenant_id)
        if current is None:
            raise ApiProblem(404, detail="No such tenant")
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not UNSET}
        merged = {
            "name": current.name,
            "timezone": current.timezone,
            "default_region": current.default_region,
            "opt_out_keywords": current.opt_out_keywords,
            "device_daily_cap": current.device_daily_cap,
            "pacing": current.pacing,
            **changes,
        }
        reply = await gw.send(build(ChangeTenantSettings, who, **merged))
        found = await gw.tenants.settings(who.tenant_id)
        assert found is not None
        stream = stream_key(gw, reply, STREAM)
        return Response(
            with_write(public_settings(found), TenantSettingsResult, reply, stream),
            headers=write_headers(reply, stream),
        )
