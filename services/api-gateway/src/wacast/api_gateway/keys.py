"""The API key index: every key of every tenant, in memory, followed from the TENANTS stream.

An ordered consumer replays the stream from its start and then follows it, so a request is
authenticated without a database and a key issued or revoked on any replica counts on every
replica within milliseconds. A key unknown here may just have been issued: before refusing
it the index catches up with the stream's current end once (bounded).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from wacast.contracts import queries as q
from wacast.contracts import tenants as tn
from wacast.contracts.streams import TENANTS, codec
from wacast.contracts.subjects import Topology

log = logging.getLogger("wacast.api.keys")

HEARTBEAT_SECONDS = 1.0
"""The index's ordered consumer is recreated after two missed heartbeats: after a NATS
restart (which drops it) keys issued or revoked meanwhile count within about 2 s of the
reconnect, not the library's default 10 s."""


@dataclass
class KeyRecord:
    key_id: str
    tenant_id: str
    key_hash: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def public(self) -> q.ApiKey:
        """What may be shown of the key: never its hash."""
        return q.ApiKey(
            id=self.key_id,
            name=self.name,
            prefix=self.prefix,
            created_at=self.created_at,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
        )

    def valid(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


class KeyIndex:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.keys: dict[str, KeyRecord] = {}
        self.tenants: dict[str, str] = {}
        """tenant id -> name"""
        self.position = 0
        self._moved = asyncio.Condition()
        self._sub: Subscription | None = None
        self._syncing: asyncio.Task[bool] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Replay every tenant and key, then keep following."""
        js = self.nc.jetstream()
        self._sub = await js.subscribe(
            "",  # every subject of the stream: tenants and keys
            stream=TENANTS.name(self.topology),
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_SECONDS,
            deliver_policy=DeliverPolicy.ALL,
            cb=self._receive,
        )
        if not await self.sync(timeout):
            raise TimeoutError("the API key index did not catch up with the TENANTS stream")

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _receive(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        try:
            self.apply(codec(TENANTS).decode(msg.data))
        except Exception:
            log.exception("TENANTS seq %s cannot be read; skipped", seq)
        async with self._moved:
            self.position = max(self.position, seq)
            self._moved.notify_all()

    def apply(self, event: object) -> None:
        if isinstance(event, tn.TenantCreated | tn.TenantSettingsChanged):
            self.tenants[event.tenant_id] = event.name
        elif isinstance(event, tn.ApiKeyIssued):
            self.keys.setdefault(
                event.key_id,
                KeyRecord(
                    key_id=event.key_id,
                    tenant_id=event.tenant_id,
                    key_hash=event.key_hash,
                    name=event.name,
                    prefix=event.prefix,
                    created_at=event.occurred_at,
                    expires_at=event.expires_at,
                ),
            )
        elif isinstance(event, tn.ApiKeyRevoked):
            found = self.keys.get(event.key_id)
            if found is not None and found.revoked_at is None:
                found.revoked_at = event.occurred_at

    async def sync(self, timeout: float = 1.0) -> bool:
        """Catch up with the stream's end as it is now; False when that took too long."""
        info = await self.nc.jetstream().stream_info(TENANTS.name(self.topology))
        return await self.reach(int(info.state.last_seq), timeout)

    async def reach(self, seq: int, timeout: float = 2.0) -> bool:
        """Wait until the index has applied TENANTS sequence `seq`; False when it took too
        long."""
        async with self._moved:
            try:
                await asyncio.wait_for(self._moved.wait_for(lambda: self.position >= seq), timeout)
            except TimeoutError:
                return False
        return True

    def find(self, token: str, now: datetime) -> KeyRecord | None:
        record = self.keys.get(tn.key_id_of(token))
        if record is None or not hmac.compare_digest(record.key_hash, tn.key_hash(token)):
            return None
        return record if record.valid(now) else None

    async def authenticate(self, token: str, now: datetime) -> KeyRecord | None:
        """The valid key `token` is, catching up once if it is not known yet."""
        found = self.find(token, now)
        if found is not None or tn.key_id_of(token) in self.keys:
            return found
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.create_task(self.sync())
        try:
            await asyncio.shield(self._syncing)
        except Exception:
            return None
        return self.find(token, now)

    def of_tenant(self, tenant_id: str) -> list[KeyRecord]:
        found = [k for k in self.keys.values() if k.tenant_id == tenant_id]
        return sorted(found, key=lambda k: (k.created_at, k.key_id))
