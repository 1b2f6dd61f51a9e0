"""`/api/v1/media`: upload (multipart or base64 JSON) or fetch by URL; list, get, delete.

Uploaded bytes are staged in the media object store (`uploads/<tenant>/...`); the
campaign-service (`IngestMedia`) sniffs, compresses images under 350 KB, stores the result
and records it.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.params import FromPath, FromQuery

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
from wacast.api_gateway.domain.media.schemas import MediaJson, MediaResult
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts.commands import DeleteMedia, IngestMedia
from wacast.contracts.streams import MEDIA_BUCKET
from wacast.contracts.values import MediaKind

STREAM = "MEDIA"
from_json = msgspec.json.Decoder(MediaJson)


@dataclass
class MediaOperation(Operation):
    """The upload takes multipart or JSON: described by hand, since the handler reads the
    body itself to accept both."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type="object",  # type: ignore[arg-type]
                        properties={"file": Schema(type="string", format="binary")},  # type: ignore[arg-type]
                        required=["file"],
                    )
                ),
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            Schema(
                                type="object",  # type: ignore[arg-type]
                                properties={
                                    "base64": Schema(type="string", min_length=1),  # type: ignore[arg-type]
                                    "filename": Schema(type="string", max_length=200),  # type: ignore[arg-type]
                                },
                                required=["base64"],
                            ),
                            Schema(
                                type="object",  # type: ignore[arg-type]
                                properties={
                                    "url": Schema(type="string", min_length=1, max_length=2000),  # type: ignore[arg-type]
                                    "filename": Schema(type="string", max_length=200),  # type: ignore[arg-type]
                                },
                                required=["url"],
                            ),
                        ]
                    )
                ),
            },
        )


async def staged(gw: Gateway, who: Principal, media_id: str, content: bytes) -> str:
    if not content:
        raise ApiProblem(422, detail="the media is empty")
    if len(content) > gw.settings.max_upload_bytes:
        raise ApiProblem(413)
    name = f"uploads/{who.tenant_id}/{media_id}-{secrets.token_hex(4)}"
    bucket = await gw.nc.jetstream().object_store(gw.topology.bucket(MEDIA_BUCKET))
    await bucket.put(name, content)
    return name


async def source_of(
    gw: Gateway, who: Principal, media_id: str, request: Request[Any, Any, Any]
) -> dict[str, str]:
    """`IngestMedia` fields for the body: a multipart file, base64 JSON or a URL."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiProblem(422, detail="send the file as the multipart field `file`")
        content = await upload.read()
        return {
            "staged_object": await staged(gw, who, media_id, content),
            "filename": (upload.filename or "")[:200],
        }
    if kind in ("application/json", ""):
        try:
            body = from_json.decode(await request.body())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ApiProblem(422, detail=f"send {{base64, filename}} or {{url}}: {exc}") from None
        if bool(body.base64) == bool(body.url):
            raise ApiProblem(422, detail="send exactly one of base64 or url")
        if body.url:
            if not body.url.lower().startswith(("http://", "https://")):
                raise ApiProblem(422, detail="url must be http or https")
            return {"url": body.url, "filename": body.filename}
        try:
            content = base64.b64decode(body.base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiProblem(422, detail="base64 is not valid base64") from None
        return {
            "staged_object": await staged(gw, who, media_id, content),
            "filename": body.filename,
        }
    raise ApiProblem(415, detail="send multipart/form-data or application/json")


class MediaController(Controller):
    path = "/media"
    tags = ["media"]

    @post(
        "/",
        status_code=201,
        responses=responses(413, 415, 503, 504),
        summary="Upload media or fetch it by URL",
        operation_class=MediaOperation,
        request_max_body_size=None,
    )
    async def create(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        request: Request[Any, Any, Any],
    ) -> Response[MediaResult]:
        """Images are compressed to under 350 KB; video (16 MB) and documents (100 MB) are
        kept as they are."""
        media_id = new_id("med", who, idem, "/media")
        source = await source_of(gw, who, media_id, request)
        reply = await gw.send(build(IngestMedia, who, idem, media_id=media_id, **source))
        media_id = reply.id or media_id
        stream = stream_key(gw, reply, STREAM)
        found = await read_back(
            gw,
            q.MEDIA,
            q.GetOne(
                tenant_id=who.tenant_id, id=media_id, after_seq=reply.seq, after_stream=STREAM
            ),
            q.Media,
        )
        if found is None:
            data = reply.data
            found = q.Media(
                id=media_id,
                kind=str(data.get("kind", "document")),  # type: ignore[arg-type]
                mime=str(data.get("mime", "application/octet-stream")),
                bytes=int(data.get("bytes", 0)),
                filename=source.get("filename", ""),
                created_at=gw.clock.now(),
            )
        return Response(
            with_write(found, MediaResult, reply, stream),
            status_code=201,
            headers={**write_headers(reply, stream), "Location": f"/api/v1/media/{media_id}"},
        )

    @get("/", responses=responses(503, 504), summary="List media")
    async def list_media(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        read: ReadDep,
        kind: FromQuery[MediaKind | None] = None,
    ) -> q.MediaPage:
        """Newest first."""
        return await gw.ask(
            q.MEDIA_LIST,
            q.ListMedia(
                tenant_id=who.tenant_id,
                kind=kind,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.MediaPage,
        )

    @get("/{media_id:str}", responses=responses(404, 503, 504), summary="Get a media item")
    async def get_media(
        self, gw: GatewayDep, who: PrincipalDep, media_id: FromPath[str], read: ReadDep
    ) -> q.Media:
        return await gw.ask(
            q.MEDIA,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(media_id, "media"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.Media,
        )

    @delete(
        "/{media_id:str}",
        status_code=202,
        responses=responses(404, 409, 503, 504),
        summary="Delete a media item",
    )
    async def delete_media(
        self, gw: GatewayDep, who: PrincipalDep, media_id: FromPath[str]
    ) -> Response[Accepted]:
        """Messages already requested with it fail with `media_missing`."""
        media_id = existing_id(media_id, "media")
        reply = await gw.send(build(DeleteMedia, who, media_id=media_id))
        return accepted(gw, reply, media_id, STREAM)
