"""What the lanes need of each tenant (timezone, default daily cap per device), folded in
memory from the TENANTS stream's `tenant.*` subjects (a few events per tenant)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client

from wacast.contracts import tenants as t
from wacast.contracts.streams import TENANTS, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.versioning import StreamCodec
from wacast.runtime.reader import SubjectReader

log = logging.getLogger(__name__)

Listener = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TenantLimits:
    timezone: str = "UTC"
    device_daily_cap: int | None = None


DEFAULT = TenantLimits()


class Tenants:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.known: dict[str, TenantLimits] = {}
        self.listeners: list[Listener] = []
        self.ready = asyncio.Event()

    def get(self, tenant_id: str) -> TenantLimits:
        return self.known.get(tenant_id, DEFAULT)

    def timezone(self, tenant_id: str) -> str:
        return self.get(tenant_id).timezone

    async def run(self) -> None:
        decoder = codec(TENANTS)
        stream = TENANTS.name(self.topology)
        async with SubjectReader(self.nc, stream, self.topology.all_of("tenant")) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    self._fold(_decode(decoder, msg.data))
            self.ready.set()
            async for batch in reader.follow():
                for msg in batch:
                    tenant_id = self._fold(_decode(decoder, msg.data))
                    if tenant_id is None:
                        continue
                    for listener in self.listeners:
                        try:
                            await listener(tenant_id)
                        except Exception:
                            log.exception("tenant listener failed")

    def _fold(self, event: object) -> str | None:
        match event:
            case t.TenantCreated():
                limits = TenantLimits(event.timezone or "UTC")
            case t.TenantSettingsChanged():
                limits = TenantLimits(event.timezone or "UTC", event.device_daily_cap)
            case _:
                return None
        self.known[event.tenant_id] = limits
        return event.tenant_id


def _decode(decoder: StreamCodec, data: bytes) -> object:
    try:
        return decoder.decode(data)
    except Exception as exc:
        log.error("undecodable tenant event: %s", exc)
        return None
