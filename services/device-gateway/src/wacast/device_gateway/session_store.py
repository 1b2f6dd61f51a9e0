"""WhatsApp session stores, one object per device in the sessions object store.

They cannot be rebuilt from events (they are the link itself). Reading back thousands at a
takeover must be quick: a session of one chunk is read with two direct gets (its meta and
its chunk) instead of an ordered consumer per object; bigger ones take the usual path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

from nats.aio.client import Client
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from wacast.contracts.streams import SESSIONS_BUCKET
from wacast.contracts.subjects import Topology

log = logging.getLogger(__name__)


class SessionStore:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.js = nc.jetstream()
        self.bucket = topology.bucket(SESSIONS_BUCKET)
        self.stream = f"OBJ_{self.bucket}"
        self._store: ObjectStore | None = None

    async def _objects(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    async def put(self, device_id: str, session: bytes) -> None:
        await (await self._objects()).put(device_id, session)

    async def delete(self, device_id: str) -> None:
        try:
            await (await self._objects()).delete(device_id)
        except (ObjectNotFoundError, NotFoundError):
            return

    async def get(self, device_id: str) -> bytes | None:
        meta_subject = f"$O.{self.bucket}.M.{base64.urlsafe_b64encode(device_id.encode()).decode()}"
        try:
            meta = await self.js.get_last_msg(self.stream, meta_subject, direct=True)
        except NotFoundError:
            return None
        info = json.loads(meta.data or b"{}")
        if info.get("deleted"):
            return None
        if int(info.get("size") or 0) == 0:
            return b""
        if int(info.get("chunks") or 0) != 1:
            return await self._slow_get(device_id)
        chunk_subject = f"$O.{self.bucket}.C.{info['nuid']}"
        try:
            chunk = await self.js.get_last_msg(self.stream, chunk_subject, direct=True)
        except NotFoundError:
            return None
        data = chunk.data or b""
        digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
        if info.get("digest") not in (digest, digest.upper()):
            log.warning("session of %s fails its digest; reading it the slow way", device_id)
            return await self._slow_get(device_id)
        return data

    async def _slow_get(self, device_id: str) -> bytes | None:
        try:
            result = await (await self._objects()).get(device_id)
        except (ObjectNotFoundError, NotFoundError):
            return None
        return result.data or b""
