"""What every controller shares: who calls, reading your writes, paging, ids, replies."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, QueryParameter

from wacast.api_gateway.auth import Principal
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.problems import ApiProblem
from wacast.contracts.base import Command, Reply
from wacast.contracts.streams import BY_KEY, spec_of_stream_name
from wacast.contracts.subjects import check_token

C = TypeVar("C", bound=Command)
S = TypeVar("S", bound=msgspec.Struct)

StreamKey = Literal[
    "DEVICES", "LEADS", "MEDIA", "CAMPAIGNS", "MESSAGES", "SEQUENCES", "TENANTS", "WEBHOOKS"
]
SEQ_HEADER = "Wacast-Seq"
STREAM_HEADER = "Wacast-Stream"
UNAVAILABLE = (404, 503, 504)
"""Answers of a read-back after a write that fall back to what the write itself said."""


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """The owner accepted the command; `seq` (with `stream`) reads your write back
    (`?after_seq=`)."""

    id: str
    seq: int
    stream: str


GatewayDep = NamedDependency[Gateway]
"""The injected dependencies, by parameter name: `gw`, `who`, `page`, `read`, `idem`."""
PrincipalDep = NamedDependency[Principal]
IdempotencyDep = NamedDependency[str]


@dataclass(frozen=True)
class Consistency:
    after_seq: int
    after_stream: str


@dataclass(frozen=True)
class PageParams:
    cursor: str
    limit: int


ReadDep = NamedDependency[Consistency]
PageDep = NamedDependency[PageParams]


def principal(request: Request[Any, Any, Any]) -> Principal:
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise ApiProblem(401)
    return user


def consistency(
    after_seq: Annotated[
        int,
        QueryParameter(
            ge=0,
            le=2**63 - 1,
            description="Wait (up to about 2 s) until the read model has applied this "
            "sequence, taken from a write's `seq`, before answering",
        ),
    ] = 0,
    after_stream: Annotated[
        StreamKey | None,
        QueryParameter(description="The stream `after_seq` belongs to (a write's `stream`)"),
    ] = None,
) -> Consistency:
    return Consistency(after_seq, after_stream or "")


def paging(
    cursor: Annotated[
        str, QueryParameter(max_length=200, description="`next_cursor` of the previous page")
    ] = "",
    limit: Annotated[int, QueryParameter(ge=1, le=500, description="Items per page")] = 50,
) -> PageParams:
    return PageParams(cursor, limit)


def idempotency_key(
    key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            max_length=255,
            description="Makes a retried POST safe: the same key gets the first reply (24 h)",
        ),
    ] = None,
) -> str:
    return key or ""


def existing_id(value: str, what: str) -> str:
    """A path id that cannot be a subject token cannot exist: 404, as for any unknown id."""
    try:
        return check_token(value)
    except ValueError:
        raise ApiProblem(404, detail=f"No such {what}") from None


def new_id(prefix: str, who: Principal, idempotency: str, path: str) -> str:
    """A fresh opaque id; the same one for a retried request with the same key."""
    if idempotency:
        raw = "\x1f".join((who.tenant_id, path, idempotency)).encode()
        return f"{prefix}_{hashlib.sha256(raw).hexdigest()[:20]}"
    return f"{prefix}_{secrets.token_hex(10)}"


def build(cls: type[C], who: Principal, idempotency: str = "", **fields: Any) -> C:
    """The command, validated; a value its rules refuse is 422."""
    try:
        return cls(tenant_id=who.tenant_id, idempotency_key=idempotency, **fields)
    except (ValueError, TypeError, msgspec.ValidationError) as exc:
        raise ApiProblem(422, detail=str(exc)) from None


def stream_key(gw: Gateway, reply: Reply, default: str) -> str:
    """Owners name the stream by key or by its full name; the API shows the key."""
    if reply.stream in BY_KEY:
        return reply.stream
    try:
        return spec_of_stream_name(gw.topology, reply.stream).key
    except KeyError:
        return default


def write_headers(reply: Reply, stream: str) -> dict[str, str]:
    return {SEQ_HEADER: str(reply.seq), STREAM_HEADER: stream}


def accepted(gw: Gateway, reply: Reply, id_: str, default_stream: str) -> Response[Accepted]:
    stream = stream_key(gw, reply, default_stream)
    return Response(
        Accepted(id=reply.id or id_, seq=reply.seq, stream=stream),
        status_code=202,
        headers=write_headers(reply, stream),
    )


def with_write(found: msgspec.Struct, cls: type[S], reply: Reply, stream: str) -> S:
    """`found` (a resource) with the write's `seq` and `stream` added."""
    return cls(**msgspec.structs.asdict(found), seq=reply.seq, stream=stream)


async def read_back(gw: Gateway, name: str, query: msgspec.Struct, response: type[S]) -> S | None:
    """The resource as the read model has it after a write, None when it cannot tell yet."""
    try:
        return await gw.ask(name, query, response)
    except ApiProblem as problem:
        if problem.status in UNAVAILABLE:
            return None
        raise
