"""WhatsApp session stores, one object per device in the sessions object store.

They cannot be rebuilt from events (they are the link itself). Reading back thousands at a
takeover must be quick: at start-up all are read in two passes over the bucket, later one
session of one chunk is read with two direct gets (its meta and its chunk) instead of an
ordered consumer per object; bigger ones take the usual path. Writes are batched
(`session_writer`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

from nats.aio.client import Client
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from wacast.contracts.streams import SESSIONS_BUCKET
from wacast.contracts.subjects import Topology
from wacast.device_gateway.session_writer import CHUNK, SessionWriter, digest
from wacast.runtime.reader import SubjectReader

log = logging.getLogger(__name__)

WRITERS = 32
"""Big sessions written at once with the object store's `put` (small ones are batched)."""


class SessionStore:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.bucket = topology.bucket(SESSIONS_BUCKET)
        self.stream = f"OBJ_{self.bucket}"
        self._store: ObjectStore | None = None
        self._preloaded: dict[str, bytes] = {}
        self._writers = asyncio.Semaphore(WRITERS)
        self.writer = SessionWriter(nc, self.bucket)
        self._open = False

    async def _objects(self) -> ObjectStore:
        if self._store is None:
            self._store = await self.js.object_store(self.bucket)
        return self._store

    async def open(self) -> None:
        """Start the batched writer (sessions written before use the object store's put)."""
        await self.writer.open()
        self._open = True

    async def close(self, drain: float = 10.0) -> None:
        if self._open:
            self._open = False
            await self.writer.close(drain)

    async def preload(self) -> int:
        """Read every stored session in two passes over the bucket (its metas, then its
        chunks), for a start-up that connects thousands of devices at once; returns how
        many. A preloaded session may be stale by the time it is used: a connect refused
        with it is tried again with a fresh read (see `sessions`)."""
        names: dict[str, tuple[str, str]] = {}
        meta_prefix = f"$O.{self.bucket}.M."
        async with SubjectReader(
            self.nc, self.stream, meta_prefix + ">", last_per_subject=True
        ) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    info = json.loads(msg.data or b"{}")
                    if not info.get("deleted") and int(info.get("chunks") or 0) == 1:
                        names[str(info["nuid"])] = (str(info["name"]), str(info.get("digest")))
        chunk_prefix = f"$O.{self.bucket}.C."
        async with SubjectReader(
            self.nc, self.stream, chunk_prefix + ">", last_per_subject=True
        ) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    found = names.get(msg.subject.removeprefix(chunk_prefix))
                    if found is not None and digest(msg.data or b"") == found[1]:
                        self._preloaded[found[0]] = msg.data or b""
        return len(self._preloaded)

    def preloaded(self, device_id: str) -> bytes | None:
        """A session read by `preload` (once; None when there is none)."""
        return self._preloaded.pop(device_id, None)

    def forget_preloaded(self) -> None:
        self._preloaded.clear()

    async def put(self, device_id: str, session: bytes) -> None:
        self._preloaded.pop(device_id, None)
        if self._open and len(session) <= CHUNK:
            await self.writer.put(device_id, session)
            return
        async with self._writers:
            await (await self._objects()).put(device_id, session)

    async def delete(self, device_id: str) -> None:
        self._preloaded.pop(device_id, None)
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
        if info.get("digest") != digest(data):
            log.warning("session of %s fails its digest; reading it the slow way", device_id)
            return await self._slow_get(device_id)
        return data

    async def _slow_get(self, device_id: str) -> bytes | None:
        try:
            result = await (await self._objects()).get(device_id)
        except (ObjectNotFoundError, NotFoundError):
            return None
        return result.data or b""
