"""Media commands: ingest an upload or a URL, record media stored by the caller, delete.

`IngestMedia` is the way in: the api-gateway stages an upload (multipart, or base64 it
decoded) in the media bucket under `uploads/<tenant>/...`, or passes a URL. The bytes say
what the file is (`adapters.sniff`); images are compressed (`adapters.images`), videos (up
to 16 MB) and documents (up to 100 MB) are stored as they are with their MIME type and file
name, under `media/<tenant>/<media_id>`; then `MediaStored` is appended with expected
sequence 0, and the staged upload is deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import PurePosixPath
from typing import IO

from wacast.campaign_service.adapters import objects
from wacast.campaign_service.adapters.fetch import FetchFailed, TooLarge, UrlRefused
from wacast.campaign_service.adapters.images import InvalidImage, compress
from wacast.campaign_service.adapters.sniff import SNIFF_BYTES, UnknownType, sniff
from wacast.campaign_service.context import Deps, new_id, ok
from wacast.campaign_service.domain.errors import Refused, invalid, not_found
from wacast.contracts import commands as cmd
from wacast.contracts.base import Reply
from wacast.contracts.media import MediaDeleted, MediaStored
from wacast.contracts.streams import MEDIA
from wacast.runtime.eventstore import Conflict

CHUNK = 1024 * 1024


class MediaCommands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        s = deps.settings
        self.limits = {
            "image": s.image_max_input_bytes,
            "video": s.video_max_bytes,
            "document": s.document_max_bytes,
        }

    def limit_for(self, head: bytes, filename: str = "") -> int:
        try:
            return self.limits[sniff(head, filename).kind]
        except UnknownType as exc:
            raise Refused(
                "unsupported_media_type", "This kind of file cannot be sent", 415, str(exc)
            ) from None

    async def ingest(self, c: cmd.IngestMedia) -> Reply:
        t = c.tenant_id
        media_id = new_id("md", t, c.idempotency_key, c.media_id, "media id")
        known = await self.deps.media(t, media_id)
        if known is not None:
            return _reply(known, None)
        if c.staged_object:
            objects.check_upload(t, c.staged_object)
            body = await self.deps.objects.read(c.staged_object)
            filename = c.filename or PurePosixPath(c.staged_object).name
            source_url = ""
        else:
            body, filename = await self._fetch(c.url, c.filename)
            source_url = c.url
        try:
            event = await self._store(t, media_id, body, filename, source_url)
        finally:
            body.close()
        try:
            appended = await self.deps.store.append(
                event.subject(self.deps.topology), [event], msg_id=media_id, expected=0
            )
        except Conflict:
            raise Refused(
                "media_exists", "Media with this id exists already", 409, media_id
            ) from None
        if c.staged_object:
            await self.deps.objects.delete(c.staged_object)
        return _reply(event, appended.seq)

    async def _fetch(self, url: str, filename: str) -> tuple[IO[bytes], str]:
        try:
            fetched = await self.deps.fetcher.fetch(url, lambda h: self.limit_for(h, filename))
        except UrlRefused as exc:
            raise invalid("url_not_allowed", "The URL may not be fetched", str(exc)) from None
        except TooLarge as exc:
            raise Refused("media_too_large", "The file is too large", 413, str(exc)) from None
        except FetchFailed as exc:
            raise Refused("fetch_failed", "The URL could not be fetched", 502, str(exc)) from None
        return fetched.body, filename or fetched.filename

    async def _store(
        self, tenant_id: str, media_id: str, body: IO[bytes], filename: str, source_url: str
    ) -> MediaStored:
        head = body.read(SNIFF_BYTES)
        body.seek(0, 2)
        size = body.tell()
        body.seek(0)
        limit = self.limit_for(head, filename)
        if size > limit:
            raise Refused(
                "media_too_large", "The file is too large", 413, f"{size} bytes, at most {limit}"
            )
        if size == 0:
            raise invalid("empty_media", "The file is empty")
        found = sniff(head, filename)
        name = objects.media_object(tenant_id, media_id)
        width = height = None
        if found.kind == "image":
            s = self.deps.settings
            try:
                image = await asyncio.to_thread(
                    compress,
                    body.read(),
                    target_bytes=s.image_target_bytes,
                    max_side=s.image_max_side,
                )
            except InvalidImage as exc:
                raise invalid("invalid_image", "The image cannot be used", str(exc)) from None
            data: bytes | IO[bytes] = image.data
            digest, stored = hashlib.sha256(image.data).hexdigest(), len(image.data)
            width, height, mime = image.width, image.height, image.mime
            filename = _renamed(filename or media_id, "jpg")
        else:
            digest, stored = _sha256(body), size
            data, mime = body, found.mime
            filename = filename or f"{media_id}.{found.extension}"
        await self.deps.objects.put(name, data)
        return MediaStored(
            tenant_id=tenant_id,
            occurred_at=self.deps.clock.now(),
            media_id=media_id,
            kind=found.kind,
            mime=mime,
            bytes=stored,
            filename=filename,
            sha256=digest,
            object_name=name,
            width=width,
            height=height,
            source="url" if source_url else "upload",
            source_url=source_url,
            original_bytes=size,
        )

    async def record(self, c: cmd.StoreMedia) -> Reply:
        """Media the caller compressed and stored itself: checked to exist, as described."""
        t = c.tenant_id
        if not c.object_name.startswith((objects.upload_prefix(t), f"media/{t}/")):
            objects.check_upload(t, c.object_name)
        size = await self.deps.objects.size(c.object_name)
        if size is None:
            raise not_found("object", c.object_name)
        if size != c.bytes:
            raise invalid(
                "size_mismatch",
                "The object's size is not the one given",
                f"stored {size} bytes, given {c.bytes}",
            )
        media_id = new_id("md", t, c.idempotency_key, c.media_id, "media id")
        event = MediaStored(
            tenant_id=t,
            occurred_at=self.deps.clock.now(),
            media_id=media_id,
            kind=c.kind,
            mime=c.mime,
            bytes=c.bytes,
            filename=c.filename,
            sha256=c.sha256,
            object_name=c.object_name,
            width=c.width,
            height=c.height,
            source=c.source,
            source_url=c.source_url,
            original_bytes=c.original_bytes,
        )
        try:
            appended = await self.deps.store.append(
                event.subject(self.deps.topology), [event], msg_id=media_id, expected=0
            )
        except Conflict:
            raise Refused(
                "media_exists", "Media with this id exists already", 409, media_id
            ) from None
        return _reply(event, appended.seq)

    async def delete(self, c: cmd.DeleteMedia) -> Reply:
        known = await self.deps.media(c.tenant_id, c.media_id)
        if known is None:
            raise not_found("media", c.media_id)
        event = MediaDeleted(
            tenant_id=c.tenant_id, occurred_at=self.deps.clock.now(), media_id=c.media_id
        )
        subject = event.subject(self.deps.topology)
        seq = await self.deps.store.last_seq(MEDIA, subject)
        appended = await self.deps.store.append(
            subject, [event], msg_id=f"{c.media_id}.deleted", expected=seq
        )
        await self.deps.objects.delete(known.object_name)
        return ok(appended, MEDIA, c.media_id)


def _sha256(body: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := body.read(CHUNK):
        digest.update(chunk)
    body.seek(0)
    return digest.hexdigest()


def _renamed(filename: str, extension: str) -> str:
    return f"{PurePosixPath(filename).stem or 'image'}.{extension}"


def _reply(event: MediaStored, seq: int | None) -> Reply:
    data = {
        "kind": event.kind,
        "mime": event.mime,
        "bytes": event.bytes,
        "filename": event.filename,
        "width": event.width,
        "height": event.height,
        "object_name": event.object_name,
        "original_bytes": event.original_bytes,
    }
    return Reply(
        ok=True, seq=seq or 0, stream=MEDIA.key if seq else "", id=event.media_id, data=data
    )
