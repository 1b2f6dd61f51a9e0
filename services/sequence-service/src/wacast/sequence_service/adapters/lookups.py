"""Reads of the private tables: what decisions need, in as few queries as possible."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from wacast.contracts.values import Audience, MediaRef
from wacast.sequence_service.adapters.codecs import ENROLLMENT, LEAD, MEDIA, SEQUENCE
from wacast.sequence_service.adapters.schema import KEYS
from wacast.sequence_service.domain.enrollment import Enrollment
from wacast.sequence_service.domain.schedule import DEFAULT_TIMEZONE
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import DeviceView, LeadView

Key = tuple[str, str]
LEAD_ROW = "SELECT to_jsonb(leads) FROM leads"
DUE_ORDER = "e.due_at, e.tenant_id, e.enrollment_id"
_DUE = (
    "FROM enrollments e JOIN sequences s ON s.tenant_id = e.tenant_id "
    "AND s.sequence_id = e.sequence_id AND s.status = 'active' "
    "WHERE e.status = 'active' AND e.due_at IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An enrollment as of its subject's last sequence `seq`: append against it."""

    state: Enrollment
    seq: int


@dataclass(frozen=True, slots=True)
class DueKey:
    due_at: datetime
    tenant_id: str
    enrollment_id: str


def _pairs(keys: Iterable[Key]) -> tuple[list[str], list[str]]:
    unique = list(dict.fromkeys(keys))
    return [k[0] for k in unique], [k[1] for k in unique]


def _snapshots(rows: Iterable[Any]) -> list[Snapshot]:
    return [Snapshot(ENROLLMENT.decode(r["state"]), r["last_seq"]) for r in rows]


class Lookups:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            return list(await conn.fetch(query, *args))

    # enrollments -----------------------------------------------------------------
    async def enrollment(self, tenant_id: str, enrollment_id: str) -> Snapshot | None:
        rows = await self._fetch(
            "SELECT state, last_seq FROM enrollments WHERE tenant_id = $1 AND enrollment_id = $2",
            tenant_id,
            enrollment_id,
        )
        found = _snapshots(rows)
        return found[0] if found else None

    async def due(self, now: datetime, after: DueKey | None, limit: int) -> list[Snapshot]:
        """Active enrollments of active sequences whose step is due, in due order."""
        start = after or DueKey(datetime.min.replace(tzinfo=now.tzinfo), "", "")
        rows = await self._fetch(
            f"SELECT e.state, e.last_seq {_DUE} AND e.due_at <= $1 "
            f"AND (e.due_at, e.tenant_id, e.enrollment_id) > ($2, $3, $4) "
            f"ORDER BY {DUE_ORDER} LIMIT $5",
            now,
            start.due_at,
            start.tenant_id,
            start.enrollment_id,
            limit,
        )
        return _snapshots(rows)

    async def next_due(self) -> datetime | None:
        rows = await self._fetch(f"SELECT e.due_at {_DUE} ORDER BY {DUE_ORDER} LIMIT 1")
        return rows[0][0] if rows else None

    async def latest(
        self, tenant_id: str, sequence_id: str, lead_ids: list[str]
    ) -> dict[str, Snapshot]:
        """Each lead's latest enrollment in the sequence."""
        rows = await self._fetch(
            "SELECT DISTINCT ON (lead_id) state, last_seq FROM enrollments "
            "WHERE tenant_id = $1 AND sequence_id = $2 AND lead_id = ANY($3::text[]) "
            "ORDER BY lead_id, nth DESC",
            tenant_id,
            sequence_id,
            lead_ids,
        )
        return {s.state.lead_id: s for s in _snapshots(rows)}

    async def running_of_lead(self, tenant_id: str, lead_id: str) -> list[Snapshot]:
        rows = await self._fetch(
            "SELECT state, last_seq FROM enrollments WHERE tenant_id = $1 AND lead_id = $2 "
            "AND status IN ('active', 'paused')",
            tenant_id,
            lead_id,
        )
        return _snapshots(rows)

    async def enrollments_of_lead(self, tenant_id: str, lead_id: str) -> list[Snapshot]:
        """Every enrollment the lead had, running or ended."""
        rows = await self._fetch(
            "SELECT state, last_seq FROM enrollments WHERE tenant_id = $1 AND lead_id = $2",
            tenant_id,
            lead_id,
        )
        return _snapshots(rows)

    async def running_of_device(
        self, tenant_id: str, device_id: str, *, paused_offline_only: bool = False
    ) -> list[Snapshot]:
        """Running enrollments of the leads now assigned to the device."""
        status = (
            "e.status = 'paused' AND e.reason = 'device_offline'"
            if paused_offline_only
            else "e.status IN ('active', 'paused')"
        )
        rows = await self._fetch(
            "SELECT e.state, e.last_seq FROM enrollments e JOIN leads l "
            "ON l.tenant_id = e.tenant_id AND l.lead_id = e.lead_id "
            f"WHERE e.tenant_id = $1 AND l.device_id = $2 AND {status}",
            tenant_id,
            device_id,
        )
        return _snapshots(rows)

    async def running_of_sequence(
        self, tenant_id: str, sequence_id: str, chunk: int = 1000
    ) -> AsyncIterator[list[Snapshot]]:
        after = ""
        while True:
            rows = await self._fetch(
                "SELECT state, last_seq, enrollment_id FROM enrollments WHERE tenant_id = $1 "
                "AND sequence_id = $2 AND status IN ('active', 'paused') AND enrollment_id > $3 "
                "ORDER BY enrollment_id LIMIT $4",
                tenant_id,
                sequence_id,
                after,
                chunk,
            )
            if not rows:
                return
            after = rows[-1]["enrollment_id"]
            yield _snapshots(rows)

    async def archived_with_running(self) -> list[Key]:
        """Archived sequences some enrollments of which still run (a sweep was cut short)."""
        rows = await self._fetch(
            "SELECT DISTINCT e.tenant_id, e.sequence_id FROM enrollments e JOIN sequences s "
            "ON s.tenant_id = e.tenant_id AND s.sequence_id = e.sequence_id "
            "WHERE s.status = 'archived' AND e.status IN ('active', 'paused')"
        )
        return [(r[0], r[1]) for r in rows]

    async def paused_but_online(self) -> list[Snapshot]:
        """Enrollments paused for an offline device whose lead's device is online now."""
        rows = await self._fetch(
            "SELECT e.state, e.last_seq FROM enrollments e JOIN leads l "
            "ON l.tenant_id = e.tenant_id AND l.lead_id = e.lead_id JOIN devices d "
            "ON d.tenant_id = l.tenant_id AND d.device_id = l.device_id "
            "WHERE e.status = 'paused' AND e.reason = 'device_offline' AND d.online"
        )
        return _snapshots(rows)

    async def progress(self, tenant_id: str, sequence_id: str) -> dict[str, int]:
        rows = await self._fetch(
            "SELECT status, count(*), sum(sent) FROM enrollments "
            "WHERE tenant_id = $1 AND sequence_id = $2 GROUP BY status",
            tenant_id,
            sequence_id,
        )
        counts = {r[0]: int(r[1]) for r in rows}
        counts["messages_sent"] = sum(int(r[2] or 0) for r in rows)
        return counts

    # sequences -----------------------------------------------------------------
    async def sequences(self, keys: Iterable[Key]) -> dict[Key, Sequence]:
        rows = await self._fetch(
            f"SELECT state FROM sequences WHERE (tenant_id, sequence_id) IN ({KEYS})",
            *_pairs(keys),
        )
        found = [SEQUENCE.decode(r[0]) for r in rows]
        return {(s.tenant_id, s.sequence_id): s for s in found}

    async def triggered(self) -> list[Sequence]:
        """Active sequences that enroll by triggers."""
        rows = await self._fetch(
            "SELECT state FROM sequences WHERE status = 'active' AND has_triggers"
        )
        return [SEQUENCE.decode(r[0]) for r in rows]

    # what others own -------------------------------------------------------------
    async def leads(self, keys: Iterable[Key]) -> dict[Key, LeadView]:
        rows = await self._fetch(
            f"{LEAD_ROW} WHERE (tenant_id, lead_id) IN ({KEYS})", *_pairs(keys)
        )
        found = [LEAD.decode(r[0]) for r in rows]
        return {(v.tenant_id, v.lead_id): v for v in found}

    async def matching(self, tenant_id: str, audience: Audience) -> list[LeadView]:
        """Reachable leads with a device that match `audience`."""
        rows = await self._fetch(
            f"{LEAD_ROW} WHERE tenant_id = $1 AND NOT opted_out AND NOT deleted "
            "AND device_id <> '' AND ($2 = 'all' OR status = $2) "
            "AND (cardinality($3::text[]) = 0 OR device_id = ANY($3::text[]))",
            tenant_id,
            audience.status,
            audience.device_ids,
        )
        return [v for v in (LEAD.decode(r[0]) for r in rows) if v.matches(audience)]

    async def devices(self, keys: Iterable[Key]) -> dict[Key, DeviceView]:
        rows = await self._fetch(
            "SELECT tenant_id, device_id, online, deleted FROM devices "
            f"WHERE (tenant_id, device_id) IN ({KEYS})",
            *_pairs(keys),
        )
        return {(r[0], r[1]): DeviceView(online=r[2], deleted=r[3]) for r in rows}

    async def timezones(self, tenant_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(tenant_ids))
        rows = await self._fetch(
            "SELECT tenant_id, timezone FROM tenants WHERE tenant_id = ANY($1::text[])", wanted
        )
        found = {r[0]: r[1] for r in rows}
        return {t: found.get(t) or DEFAULT_TIMEZONE for t in wanted}

    async def media(self, keys: Iterable[Key]) -> dict[Key, MediaRef]:
        pairs = _pairs(keys)
        if not pairs[0]:
            return {}
        rows = await self._fetch(
            f"SELECT tenant_id, ref FROM media WHERE (tenant_id, media_id) IN ({KEYS})", *pairs
        )
        refs = [(r[0], MEDIA.decode(r[1])) for r in rows]
        return {(t, ref.media_id): ref for t, ref in refs}
