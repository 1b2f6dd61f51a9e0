"""The e2e run's progress samples: the simulator's sends, the campaign's counts in the
report tables, and how far the report projection is behind the MESSAGES stream."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.e2e_clients import Clients
from wacast.contracts.streams import MESSAGES


@dataclass
class Sample:
    at: float
    """Seconds since the trigger."""
    sent: int
    """Sends the simulator accepted."""
    counts: dict[str, int]
    """The campaign's messages by status in the report tables."""
    stream_end: int
    """The MESSAGES stream's last sequence."""
    projected: int
    """The report projection's checkpoint on MESSAGES."""


async def report_counts(clients: Clients, campaign_id: str) -> tuple[dict[str, int], int]:
    """The campaign's messages by status, and the report projection's checkpoint."""
    async with clients.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, sum(n)::bigint AS n FROM reports.campaign_counts "
            "WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status",
            clients.tenant,
            campaign_id,
        )
        projected = await conn.fetchval(
            "SELECT seq FROM reports.projection_checkpoints WHERE stream = $1", MESSAGES.key
        )
    return {r["status"]: int(r["n"]) for r in rows}, int(projected or 0)


async def sample(clients: Clients, started: float, campaign_id: str) -> Sample:
    stats, (counts, projected), end = await asyncio.gather(
        clients.sim("/sim/v1/stats"),
        report_counts(clients, campaign_id),
        clients.stream_end(MESSAGES.key),
    )
    return Sample(
        at=time.monotonic() - started,
        sent=int(stats["received"]),
        counts=counts,
        stream_end=end,
        projected=projected,
    )
