"""The projection that builds the private tables from the streams.

Each batch is folded in memory (one read of the rows it touches, one multi-row write per
table), so replaying a stream of a hundred thousand enrollments takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.leads import LeadErased, LeadEventBase
from wacast.contracts.media import MediaDeleted, MediaStored
from wacast.contracts.sequences import EnrollmentEventBase, SequenceEventBase
from wacast.contracts.streams import DEVICES, LEADS, MEDIA, SEQUENCES, TENANTS, StreamSpec
from wacast.contracts.tenants import TenantCreated, TenantSettingsChanged
from wacast.contracts.values import MediaRef
from wacast.runtime.projection import DbConnection, Envelope
from wacast.sequence_service.adapters import schema
from wacast.sequence_service.adapters.codecs import ENROLLMENT, LEAD, SEQUENCE, encode
from wacast.sequence_service.domain import enrollment, sequence
from wacast.sequence_service.domain.views import (
    DeviceView,
    LeadView,
    evolve_device,
    evolve_lead,
)

S = TypeVar("S")
Key = tuple[str, str]


class PrivateTables:
    name = "sequences_private"
    streams: Sequence[StreamSpec] = (TENANTS, DEVICES, MEDIA, LEADS, SEQUENCES)

    def __init__(self) -> None:
        self.last_sequence_change = 0
        """Stream sequence of the last sequence (not enrollment) event applied."""

    async def migrate(self, conn: DbConnection) -> None:
        for statement in schema.DDL:
            await conn.execute(statement)

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        stream = batch[0].stream
        if stream == SEQUENCES.key:
            await self._sequences(conn, batch)
        elif stream == LEADS.key:
            await self._leads(conn, batch)
        elif stream == DEVICES.key:
            await self._devices(conn, batch)
        elif stream == TENANTS.key:
            await self._tenants(conn, batch)
        elif stream == MEDIA.key:
            await self._media(conn, batch)

    async def _sequences(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        runs = [e for e in batch if isinstance(e.event, EnrollmentEventBase)]
        defs = [e for e in batch if isinstance(e.event, SequenceEventBase)]
        if defs:
            self.last_sequence_change = defs[-1].seq
            states = await _fold(
                conn,
                defs,
                "SELECT tenant_id, sequence_id, state FROM sequences",
                "sequence_id",
                SEQUENCE.decode,
                lambda s, e: sequence.evolve(s, e),  # type: ignore[arg-type]
            )
            rows = [(k, s, seq) for k, (s, seq) in states.items() if s is not None]
            await conn.execute(
                schema.UPSERT_SEQUENCES,
                *_columns(
                    [
                        (k[0], k[1], s.status, bool(s.triggers), encode(s), seq)
                        for k, s, seq in rows
                    ],
                    6,
                ),
            )
        if runs:
            runs_states = await _fold(
                conn,
                runs,
                "SELECT tenant_id, enrollment_id, state FROM enrollments",
                "enrollment_id",
                ENROLLMENT.decode,
                lambda s, e: enrollment.evolve(s, e),  # type: ignore[arg-type]
            )
            values = [_enrollment_row(s, seq) for s, seq in runs_states.values() if s is not None]
            await conn.execute(schema.UPSERT_ENROLLMENTS, *_columns(values, 13))

    async def _leads(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        mine = [e for e in batch if isinstance(e.event, LeadEventBase)]
        if not mine:
            return
        views = await _fold(
            conn,
            mine,
            "SELECT tenant_id, lead_id, to_jsonb(leads) FROM leads",
            "lead_id",
            LEAD.decode,
            lambda v, e: None if isinstance(e, LeadErased) else evolve_lead(v, e),
        )
        gone = [k for k, (v, _) in views.items() if v is None]
        if gone:
            await conn.execute(
                f"DELETE FROM leads WHERE (tenant_id, lead_id) IN ({schema.KEYS})",
                *_columns(gone, 2),
            )
        kept: list[LeadView] = [v for v, _ in views.values() if v is not None]
        values = [_lead_row(v) for v in kept]
        if values:
            await conn.execute(schema.UPSERT_LEADS, *_columns(values, 10))

    async def _devices(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        for env in batch:
            event: Any = env.event
            row = await conn.fetchrow(
                "SELECT online, deleted FROM devices WHERE tenant_id = $1 AND device_id = $2",
                event.tenant_id,
                event.device_id,
            )
            current = None if row is None else DeviceView(online=row[0], deleted=row[1])
            after = evolve_device(current, event)
            if after is not None and after != current:
                await conn.execute(
                    "INSERT INTO devices VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, "
                    "device_id) DO UPDATE SET online = $3, deleted = $4",
                    event.tenant_id,
                    event.device_id,
                    after.online,
                    after.deleted,
                )

    async def _tenants(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        for env in batch:
            event = env.event
            if isinstance(event, TenantCreated | TenantSettingsChanged):
                await conn.execute(
                    "INSERT INTO tenants VALUES ($1, $2) "
                    "ON CONFLICT (tenant_id) DO UPDATE SET timezone = $2",
                    event.tenant_id,
                    event.timezone,
                )

    async def _media(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        for env in batch:
            event = env.event
            if isinstance(event, MediaStored):
                ref = MediaRef(
                    media_id=event.media_id,
                    kind=event.kind,
                    mime=event.mime,
                    object_name=event.object_name,
                    filename=event.filename,
                )
                await conn.execute(
                    "INSERT INTO media VALUES ($1, $2, $3) "
                    "ON CONFLICT (tenant_id, media_id) DO UPDATE SET ref = $3",
                    event.tenant_id,
                    event.media_id,
                    encode(ref),
                )
            elif isinstance(event, MediaDeleted):
                await conn.execute(
                    "DELETE FROM media WHERE tenant_id = $1 AND media_id = $2",
                    event.tenant_id,
                    event.media_id,
                )


async def _fold(
    conn: DbConnection,
    batch: Sequence[Envelope],
    select: str,
    id_field: str,
    decode: Callable[[Any], S],
    evolve: Callable[[S | None, Event], S | None],
) -> dict[Key, tuple[S | None, int]]:
    """Each touched aggregate's state after the batch, with the sequence of its last event."""
    keys = list(dict.fromkeys((e.event.tenant_id, getattr(e.event, id_field)) for e in batch))
    rows = await conn.fetch(
        f"{select} WHERE (tenant_id, {id_field}) IN ({schema.KEYS})", *_columns(keys, 2)
    )
    states: dict[Key, tuple[S | None, int]] = {(r[0], r[1]): (decode(r[2]), 0) for r in rows}
    for env in batch:
        key = (env.event.tenant_id, getattr(env.event, id_field))
        current = states.get(key, (None, 0))[0]
        states[key] = (evolve(current, env.event), env.seq)
    return states


def _enrollment_row(s: enrollment.Enrollment, seq: int) -> tuple[Any, ...]:
    return (
        s.tenant_id,
        s.enrollment_id,
        s.sequence_id,
        s.lead_id,
        s.nth,
        s.status,
        s.reason,
        s.due_at,
        s.started_at,
        s.sent,
        s.failed,
        encode(s),
        seq,
    )


def _lead_row(v: LeadView) -> tuple[Any, ...]:
    return (
        v.tenant_id,
        v.lead_id,
        v.device_id,
        v.status,
        _json(v.tags),
        v.opted_out,
        v.deleted,
        v.phone,
        v.name,
        _json(v.attributes),
    )


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to one list per column, for `unnest`."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for i, value in enumerate(row):
            columns[i].append(value)
    return columns


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
