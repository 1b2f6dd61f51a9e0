"""Bearer API keys: who is calling (their tenant), and how fast they may call.

Every path under `/api/v1` needs `Authorization: Bearer <key>`; a WebSocket may give the key
as `?access_token=` instead (browsers cannot set headers on one). A missing, unknown,
revoked or expired key is 401; a key over its rate is 429 with `Retry-After`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scopes

from wacast.api_gateway.problems import ApiProblem
from wacast.api_gateway.ratelimit import retry_after

if TYPE_CHECKING:
    from wacast.api_gateway.gateway import Gateway

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="wacast"'}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str


class ApiKeyAuth(AbstractAuthenticationMiddleware):
    def __init__(
        self,
        app: ASGIApp,
        gw: Gateway,
        exclude: str | list[str] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(app, exclude=exclude, scopes=scopes)
        self.gw = gw

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer(connection)
        if not token:
            raise ApiProblem(401, detail="send Authorization: Bearer <API key>", headers=CHALLENGE)
        record = await self.gw.keys.authenticate(token, self.gw.clock.now())
        if record is None:
            raise ApiProblem(
                401, detail="the API key is unknown, revoked or expired", headers=CHALLENGE
            )
        wait = self.gw.limiter.take(record.key_id)
        if wait:
            raise ApiProblem(429, detail="slow down", headers={"Retry-After": retry_after(wait)})
        return AuthenticationResult(user=Principal(record.tenant_id, record.key_id), auth=record)


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if connection.scope["type"] == ScopeType.WEBSOCKET:
        return connection.query_params.get("access_token", "")
    return ""
