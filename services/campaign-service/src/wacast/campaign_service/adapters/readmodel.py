"""Reads of the private tables (`private`, `outcomes`), and waiting for them to catch up.

Decisions that depend on other aggregates (who is in an audience, which device is
connected) first wait until the projections have applied the streams up to where the
caller needs them: `caught_up` reads each stream's last sequence and waits for the
projection's checkpoint in Postgres, so it works whichever replica's runner applied it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from nats.js.client import JetStreamContext

from wacast.campaign_service.adapters import outcomes, private
from wacast.contracts.streams import BY_KEY
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Audience, MessageCounts
from wacast.runtime.projection import DbConnection

P = private.SCHEMA
O = outcomes.SCHEMA  # noqa: E741

_MATCH = f"""
    FROM "{P}".leads l
    WHERE l.tenant_id = $1 AND l.created_seq <= $2
      AND ($3::text = 'all' OR l.status = $3)
      AND (cardinality($4::text[]) = 0 OR CASE WHEN $5 THEN l.tags @> $4 ELSE l.tags && $4 END)
      AND (cardinality($6::text[]) = 0 OR l.device_id = ANY($6))
"""
_ELIGIBLE = f"""
      AND NOT l.opted_out AND l.device_id <> ''
      AND NOT EXISTS (SELECT 1 FROM "{P}".devices d
                      WHERE d.tenant_id = l.tenant_id AND d.device_id = l.device_id AND d.deleted)
"""


class NotCaughtUp(Exception):
    """A projection did not reach the needed position in time."""


@dataclass(frozen=True, slots=True)
class AudienceLead:
    lead_id: str
    phone: str
    name: str
    device_id: str
    attributes: str
    """JSON object of the lead's attributes, decoded only when the text needs them."""
    eligible: bool


def audience_args(tenant_id: str, audience: Audience, leads_seq: int) -> list[Any]:
    return [
        tenant_id,
        leads_seq,
        audience.status,
        audience.tags,
        audience.tag_match == "all",
        audience.device_ids,
    ]


class ReadModel:
    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, topology: Topology) -> None:
        self.pool = pool
        self.js = js
        self.topology = topology

    # catching up ---------------------------------------------------------------------
    async def stream_end(self, stream_key: str) -> int:
        info = await self.js.stream_info(BY_KEY[stream_key].name(self.topology))
        return int(info.state.last_seq)

    async def position(self, projection: str, stream_key: str) -> int:
        schema = P if projection == private.NAME else O
        async with self.pool.acquire() as conn:
            seq = await conn.fetchval(
                f'SELECT seq FROM "{schema}".projection_checkpoints '
                "WHERE projection = $1 AND stream = $2",
                projection,
                stream_key,
            )
        return int(seq or 0)

    async def wait_for(
        self, projection: str, stream_key: str, seq: int, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                if await self.position(projection, stream_key) >= seq:
                    return
            except asyncpg.UndefinedTableError:
                pass  # the runner has not created its schema yet
            if time.monotonic() > deadline:
                raise NotCaughtUp(f"{projection} has not reached {stream_key} {seq}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def caught_up(
        self, *stream_keys: str, projection: str = private.NAME, timeout: float = 10.0
    ) -> dict[str, int]:
        """Wait until `projection` has every event stored now in `stream_keys`."""
        ends = {key: await self.stream_end(key) for key in stream_keys}
        for key, seq in ends.items():
            await self.wait_for(projection, key, seq, timeout)
        return ends

    # tenants and devices ------------------------------------------------------------------
    async def tenant(self, tenant_id: str) -> tuple[str, str] | None:
        """(default phone region, timezone) when the tenant's settings are known."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f'SELECT default_region, timezone FROM "{P}".tenants WHERE tenant_id = $1',
                tenant_id,
            )
        return None if row is None else (row[0], row[1])

    async def devices(self, tenant_id: str) -> dict[str, int]:
        """The tenant's devices (not deleted) with how many leads each has."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT d.device_id, count(l.lead_id) FROM "{P}".devices d
                LEFT JOIN "{P}".leads l ON l.tenant_id = d.tenant_id AND l.device_id = d.device_id
                WHERE d.tenant_id = $1 AND NOT d.deleted GROUP BY d.device_id
                ORDER BY d.device_id""",
                tenant_id,
            )
        return {r[0]: int(r[1]) for r in rows}

    async def any_connected(self, tenant_id: str, device_ids: Sequence[str]) -> bool:
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                f"""SELECT EXISTS (SELECT 1 FROM "{P}".devices WHERE tenant_id = $1
                AND connected AND NOT deleted
                AND (cardinality($2::text[]) = 0 OR device_id = ANY($2)))""",
                tenant_id,
                list(device_ids),
            )
        return bool(found)

    # leads and audiences -----------------------------------------------------------------
    async def audience_size(self, tenant_id: str, audience: Audience, leads_seq: int) -> int:
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                f"SELECT count(*) {_MATCH} {_ELIGIBLE}",
                *audience_args(tenant_id, audience, leads_seq),
            )
        return int(found)

    @staticmethod
    async def audience(
        conn: DbConnection, args: list[Any], after: str, prefetch: int
    ) -> AsyncIterator[AudienceLead]:
        """Every lead matching the audience after lead id `after`, in lead id order, through
        a server-side cursor (call inside a transaction): memory stays bounded."""
        query = f"""SELECT l.lead_id, l.phone, l.name, l.device_id, l.attributes::text,
            (TRUE {_ELIGIBLE}) {_MATCH} AND l.lead_id > $7 ORDER BY l.lead_id"""
        async for row in conn.cursor(query, *args, after, prefetch=prefetch):
            yield AudienceLead(row[0], row[1], row[2], row[3], row[4], row[5])

    async def leads_of_device(
        self, tenant_id: str, device_id: str, limit: int
    ) -> list[tuple[str, int, str]]:
        """(lead id, last sequence, phone) of up to `limit` leads of a device."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f'SELECT lead_id, seq, phone FROM "{P}".leads WHERE tenant_id = $1 '
                "AND device_id = $2 ORDER BY lead_id LIMIT $3",
                tenant_id,
                device_id,
                limit,
            )
        return [(r[0], int(r[1]), r[2]) for r in rows]

    # campaigns ---------------------------------------------------------------------------
    async def running(self, tenant_id: str) -> int:
        return int(
            await self._val(
                f'SELECT count(*) FROM "{P}".campaigns WHERE tenant_id = $1 '
                "AND status IN ('triggered', 'paused')",
                tenant_id,
            )
        )

    async def campaign_ids(self, tenant_id: str) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f'SELECT campaign_id FROM "{P}".campaigns WHERE tenant_id = $1', tenant_id
            )
        return [r[0] for r in rows]

    async def due(self, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
        return await self._pairs(
            f"SELECT tenant_id, campaign_id FROM \"{P}\".campaigns WHERE status = 'pending' "
            "AND schedule_at <= $1 ORDER BY schedule_at, campaign_id LIMIT $2",
            now,
            limit,
        )

    async def next_due(self, now: datetime) -> datetime | None:
        found = await self._val(
            f"SELECT min(schedule_at) FROM \"{P}\".campaigns WHERE status = 'pending' "
            "AND schedule_at > $1",
            now,
        )
        return found if isinstance(found, datetime) else None

    async def unfinished_fanouts(self) -> list[tuple[str, str]]:
        return await self._pairs(
            f"""SELECT c.tenant_id, c.campaign_id FROM "{P}".campaigns c
            LEFT JOIN "{O}".progress p USING (tenant_id, campaign_id)
            WHERE c.status = 'triggered' AND NOT coalesce(p.fanout_done, false)"""
        )

    async def unfinished_imports(self) -> list[tuple[str, str]]:
        return await self._pairs(
            f'SELECT tenant_id, import_id FROM "{P}".imports WHERE NOT finished'
        )

    async def completable(self) -> list[tuple[str, str, int, int]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT c.tenant_id, c.campaign_id, p.requested, p.skipped
                FROM "{P}".campaigns c JOIN "{O}".progress p USING (tenant_id, campaign_id)
                WHERE c.status = 'triggered' AND p.fanout_done
                  AND p.sent + p.failed + p.cancelled >= p.requested"""
            )
        return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]

    async def finishable(
        self, now: datetime, window: timedelta
    ) -> list[tuple[str, str, MessageCounts]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT c.tenant_id, c.campaign_id, p.requested, p.sent, p.delivered, p.read,
                    p.failed, p.cancelled
                FROM "{P}".campaigns c LEFT JOIN "{O}".progress p USING (tenant_id, campaign_id)
                WHERE c.status = 'completed' AND c.completed_at <= $1""",
                now - window,
            )
        return [
            (r[0], r[1], MessageCounts(**{k: int(r[k] or 0) for k in _COUNT_KEYS})) for r in rows
        ]

    async def next_finish(self, window: timedelta) -> datetime | None:
        found = await self._val(
            f"SELECT min(completed_at) FROM \"{P}\".campaigns WHERE status = 'completed'"
        )
        return found + window if isinstance(found, datetime) else None

    async def _val(self, query: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def _pairs(self, query: str, *args: Any) -> list[tuple[str, str]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(query, *args)
        return [(r[0], r[1]) for r in rows]


_COUNT_KEYS = ("requested", "sent", "delivered", "read", "failed", "cancelled")
