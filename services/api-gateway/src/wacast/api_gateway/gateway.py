"""Everything a request needs, built once per process (or per test) and handed to the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
from nats.aio.client import Client

from wacast.api_gateway.idempotency import IdempotencyStore
from wacast.api_gateway.keys import KeyIndex
from wacast.api_gateway.live import LiveHub
from wacast.api_gateway.problems import ApiProblem
from wacast.api_gateway.ratelimit import RateLimiter
from wacast.api_gateway.settings import Settings
from wacast.api_gateway.tenants import Tenants
from wacast.contracts.base import Command, Reply
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import Clock
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore
from wacast.runtime.health import ReadinessCheck

R = TypeVar("R", bound=msgspec.Struct)


@dataclass
class Gateway:
    settings: Settings
    nc: Client
    topology: Topology
    clock: Clock
    store: EventStore
    requester: Requester
    keys: KeyIndex
    limiter: RateLimiter
    idempotency: IdempotencyStore
    live: LiveHub
    tenants: Tenants
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, nc: Client, topology: Topology, clock: Clock) -> Gateway:
        store = EventStore(nc, topology)
        keys = KeyIndex(nc, topology)
        gateway = cls(
            settings=settings,
            nc=nc,
            topology=topology,
            clock=clock,
            store=store,
            requester=Requester(nc, topology, timeout=settings.command_timeout_seconds),
            keys=keys,
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            idempotency=IdempotencyStore(nc, topology, settings.idempotency_ttl_seconds),
            live=LiveHub(nc, topology, clock, settings.live_queue_size),
            tenants=Tenants(store, topology, clock, keys),
        )
        gateway.checks["nats"] = gateway._nats_ready
        return gateway

    def __deepcopy__(self, memo: dict[int, object]) -> Gateway:
        """One per process: Litestar copies route layers (with middleware arguments), and a
        copy must still be this gateway with its live connections."""
        return self

    async def _nats_ready(self) -> bool:
        return bool(self.nc.is_connected)

    async def start(self) -> None:
        await self.idempotency.start()
        await self.keys.start()
        await self.live.start()

    async def stop(self) -> None:
        await self.live.stop()
        await self.keys.stop()

    async def send(self, command: Command) -> Reply:
        """Send `command` to its owner; a refusal becomes the problem it carries."""
        reply = await self.requester.send(command)
        if not reply.ok:
            raise ApiProblem.of_reply(reply)
        return reply

    async def ask(self, name: str, query: msgspec.Struct, response: type[R]) -> R:
        found = await self.requester.query(name, query, response)
        if isinstance(found, Reply):
            raise ApiProblem.of_reply(found)
        return found
