"""The media object store bucket: staged uploads in, stored media out.

Names:
- `uploads/<tenant>/<anything>`: what a caller (the api-gateway, `wacast leads import`)
  staged before sending a command that names it: media to ingest, a CSV to import. The
  service reads it and deletes it when done. A command may only name its own tenant's
  uploads.
- `media/<tenant>/<media_id>`: stored media, as `MediaStored.object_name` says.
Reads stream into a temporary file (spooled to disk past 8 MiB): a 100 MB document or a
large CSV is never held in memory whole.
"""

from __future__ import annotations

import contextlib
import tempfile
from typing import IO

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from wacast.campaign_service.domain.errors import Refused
from wacast.contracts.streams import MEDIA_BUCKET
from wacast.contracts.subjects import Topology

SPOOL_BYTES = 8 * 1024 * 1024


def upload_prefix(tenant_id: str) -> str:
    return f"uploads/{tenant_id}/"


def media_object(tenant_id: str, media_id: str) -> str:
    return f"media/{tenant_id}/{media_id}"


def check_upload(tenant_id: str, name: str) -> None:
    prefix = upload_prefix(tenant_id)
    if not name.startswith(prefix) or len(name) == len(prefix) or ".." in name:
        raise Refused(
            "forbidden_object",
            "The object is not one of this tenant's uploads",
            403,
            f"staged objects are named {prefix}<name>",
        )


class MediaObjects:
    def __init__(self, js: JetStreamContext, topology: Topology) -> None:
        self.js = js
        self.bucket = topology.bucket(MEDIA_BUCKET)
        self._store: ObjectStore | None = None

    async def store(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    async def size(self, name: str) -> int | None:
        """The object's size, None when there is no such object."""
        obs = await self.store()
        try:
            info = await obs.get_info(name)
        except (ObjectNotFoundError, NotFoundError):
            return None
        return int(info.size or 0)

    async def read(self, name: str) -> IO[bytes]:
        """The object's bytes in a temporary file, at its start; the caller closes it."""
        obs = await self.store()
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        try:
            await obs.get(name, writeinto=body)  # type: ignore[arg-type]
        except (ObjectNotFoundError, NotFoundError):
            body.close()
            raise Refused("object_not_found", "No such object", 404, name) from None
        except BaseException:
            body.close()
            raise
        body.seek(0)
        return body

    async def put(self, name: str, data: bytes | IO[bytes]) -> None:
        obs = await self.store()
        await obs.put(name, data)  # type: ignore[arg-type]

    async def delete(self, name: str) -> None:
        obs = await self.store()
        with contextlib.suppress(ObjectNotFoundError, NotFoundError):
            await obs.delete(name)
