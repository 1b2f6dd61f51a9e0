"""The e2e run's connections to the embedded stack: NATS, its database, and HTTP to the
public API and the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from nats.aio.client import Client

from wacast.cli.stackrun import RunningStack
from wacast.contracts.subjects import Topology


@dataclass
class Clients:
    stack: RunningStack
    nc: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient

    @property
    def topology(self) -> Topology:
        return self.stack.topology

    @property
    def tenant(self) -> str:
        return self.stack.tenant_id

    async def sim(self, path: str, **params: Any) -> dict[str, Any]:
        """A GET of the simulator's own API (stats, ledger)."""
        response = await self.http.get(f"{self.stack.sim_url}{path}", params=params)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the public API with the stack's key."""
        return await self.http.request(
            method,
            f"{self.stack.api_url}{path}",
            headers={"Authorization": f"Bearer {self.stack.api_key}"},
            **kwargs,
        )

    async def stream_end(self, key: str) -> int:
        """The last sequence of a stream."""
        info = await self.nc.jetstream(timeout=10).stream_info(self.topology.stream(key))
        return int(info.state.last_seq)
