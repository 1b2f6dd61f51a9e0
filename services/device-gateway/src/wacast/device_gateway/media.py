"""Media bytes from the object store, with a bounded cache (a campaign sends one file to
many leads)."""

from __future__ import annotations

import logging
from collections import OrderedDict

from nats.aio.client import Client
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from wacast.contracts.streams import MEDIA_BUCKET
from wacast.contracts.subjects import Topology

log = logging.getLogger(__name__)


class MediaCache:
    def __init__(self, nc: Client, topology: Topology, capacity_bytes: int) -> None:
        self.nc = nc
        self.topology = topology
        self.capacity = capacity_bytes
        self.size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._store: ObjectStore | None = None

    async def get(self, name: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (any more)."""
        data = self._items.get(name)
        if data is not None:
            self._items.move_to_end(name)
            return data
        if self._store is None:
            self._store = await self.nc.jetstream().object_store(self.topology.bucket(MEDIA_BUCKET))
        try:
            result = await self._store.get(name)
        except (ObjectNotFoundError, NotFoundError):
            return None
        data = result.data or b""
        self._keep(name, data)
        return data

    def _keep(self, name: str, data: bytes) -> None:
        if len(data) > self.capacity:
            return
        self._items[name] = data
        self.size += len(data)
        while self.size > self.capacity:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)
