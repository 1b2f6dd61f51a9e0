"""Leases on the send partitions, in the leases KV bucket, shared fairly among replicas.

Each replica announces itself (`replica.<id>`) and holds partitions (`partition.<n>`, value:
the holder). A free partition is taken with create-if-absent; a held one is renewed with an
update on its revision, well within the bucket's TTL. A replica holding more than its fair
share (ceil(partitions / live replicas)) hands the surplus over gracefully; when a replica
dies, its keys expire with the TTL and the others take its partitions. A partition whose
renewal fails is dropped at once: someone else may be serving it.

Leases alone do not make one replica serve a device: the lane fences do (see `lanes`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from wacast.contracts.streams import LEASES_BUCKET
from wacast.contracts.subjects import PARTITIONS, Topology
from wacast.device_gateway import metrics
from wacast.runtime.reader import SubjectReader

log = logging.getLogger(__name__)

REPLICA = "replica."
PARTITION = "partition."


class Partitions:
    def __init__(
        self,
        nc: Client,
        topology: Topology,
        replica_id: str,
        *,
        ttl: float,
        renew_every: float,
        acquired: Callable[[int, int], None],
        lost: Callable[[int], None],
        release: Callable[[int], Awaitable[None]],
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.bucket = topology.bucket(LEASES_BUCKET)
        self.replica_id = replica_id
        self.ttl = ttl
        self.renew_every = renew_every
        self.acquired = acquired
        """Called with (partition, lease revision) when a partition is taken."""
        self.lost = lost
        """Called when a held partition's lease could not be renewed."""
        self.release = release
        """Stops serving a partition gracefully before its lease is given up."""
        self.held: dict[int, int] = {}
        self.releasing: set[int] = set()
        self.live = 1
        self._kv: KeyValue | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._kv = await self.js.key_value(self.bucket)
        status = await self._kv.status()
        if status.ttl is None or abs(status.ttl - self.ttl) > 0.001:
            info = await self.js.stream_info(f"KV_{self.bucket}")
            config = info.config
            config.max_age = self.ttl
            config.duplicate_window = min(config.duplicate_window or self.ttl, self.ttl)
            await self.js.update_stream(config)

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "open() first"
        return self._kv

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("lease round failed")
            await asyncio.sleep(self.renew_every)

    async def tick(self) -> None:
        """Renew (all at once: a slow round must not outlive the TTL), then rebalance."""
        await asyncio.gather(self.kv.put(REPLICA + self.replica_id, b""), self._renew())
        view = await self.view()
        self.live = max(1, sum(1 for key in view if key.startswith(REPLICA)))
        fair = math.ceil(PARTITIONS / self.live)
        keeping = [p for p in sorted(self.held) if p not in self.releasing]
        for partition in keeping[fair:]:
            self.releasing.add(partition)
            self._spawn(self._hand_over(partition))
        taken = len(self.held)
        for partition in self._free(view):
            if taken >= fair:
                break
            try:
                revision = await self.kv.create(
                    PARTITION + str(partition), self.replica_id.encode()
                )
            except KeyWrongLastSequenceError:
                continue
            self.held[partition] = revision
            taken += 1
            self.acquired(partition, revision)
        metrics.LEASES.set(len(self.held))

    async def view(self) -> dict[str, bytes]:
        """Every live key of the bucket and its value."""
        found: dict[str, bytes] = {}
        prefix = f"$KV.{self.bucket}."
        async with SubjectReader(
            self.nc, f"KV_{self.bucket}", prefix + ">", last_per_subject=True
        ) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
                        continue
                    found[msg.subject.removeprefix(prefix)] = msg.data
        return found

    def _free(self, view: dict[str, bytes]) -> list[int]:
        """Free partitions, starting at a replica-specific place so replicas starting
        together do not all race for the same ones."""
        start = zlib.crc32(self.replica_id.encode()) % PARTITIONS
        order = [(start + i) % PARTITIONS for i in range(PARTITIONS)]
        return [p for p in order if PARTITION + str(p) not in view and p not in self.held]

    async def _renew(self) -> None:
        await asyncio.gather(*(self._renew_one(p, r) for p, r in list(self.held.items())))

    async def _renew_one(self, partition: int, revision: int) -> None:
        key = PARTITION + str(partition)
        renewed: int | None
        try:
            renewed = await self.kv.update(key, self.replica_id.encode(), last=revision)
        except (KeyWrongLastSequenceError, NotFoundError):
            renewed = await self._still_ours(key)
        except Exception as exc:  # the bus is slow: the lease has some TTL left, try again
            log.warning("renewing the lease of partition %s failed: %s", partition, exc)
            return
        if renewed is None:
            log.warning("lease of partition %s lost", partition)
            self.held.pop(partition, None)
            self.releasing.discard(partition)
            self.lost(partition)
        elif partition in self.held:
            self.held[partition] = renewed

    async def _still_ours(self, key: str) -> int | None:
        """The key's revision if it still names this replica (an earlier renewal whose
        answer was lost moved the revision on), else None."""
        try:
            entry = await self.kv.get(key)
        except Exception:
            return None
        if entry.value == self.replica_id.encode() and entry.revision is not None:
            return int(entry.revision)
        return None

    async def _hand_over(self, partition: int) -> None:
        try:
            await self.release(partition)
        finally:
            revision = self.held.pop(partition, None)
            self.releasing.discard(partition)
            if revision is not None:
                try:
                    await self.kv.delete(PARTITION + str(partition), last=revision)
                except Exception as exc:
                    log.info("giving up partition %s: %s", partition, exc)
            metrics.LEASES.set(len(self.held))

    async def close(self) -> None:
        """Hand every partition over and leave."""
        for partition in sorted(self.held):
            if partition not in self.releasing:
                self.releasing.add(partition)
                self._spawn(self._hand_over(partition))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.kv.delete(REPLICA + self.replica_id)
        except Exception as exc:
            log.info("leaving the replica list: %s", exc)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
