"""Bulk reads and writes of read-model rows: one statement per table and batch.

A batch is folded in memory: the rows it touches are loaded with one query, events change
them in order, and the result is written back with one `INSERT ... SELECT FROM unnest(...)
ON CONFLICT DO UPDATE`. jsonb values travel as JSON text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from wacast.runtime.projection import DbConnection

Row = dict[str, Any]
Key = tuple[str, str]

DELETIONS_LOCK = "wacast.reports.deletions"
"""Advisory lock: deletions (device deleted, lead erased) take it exclusively, the batches
they would race with take it shared, so no row of a deleted thing slips in concurrently."""


def to_json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class Table:
    """A table keyed by (tenant_id, `id_column`)."""

    def __init__(self, name: str, id_column: str, columns: tuple[tuple[str, str], ...]) -> None:
        self.name = name
        self.id_column = id_column
        self.columns = columns
        names = [c for c, _ in columns]
        self.names = names
        key = ["tenant_id"] if id_column == "tenant_id" else ["tenant_id", id_column]
        selected = ", ".join(f"{c}::jsonb" if t == "jsonb" else c for c, t in columns)
        arrays = ", ".join(
            f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(columns, 1)
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in key)
        self._upsert = (
            f"INSERT INTO {name} ({', '.join(names)}) SELECT {selected} "
            f"FROM unnest({arrays}) AS u({', '.join(names)}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        )
        self._load = (
            f"SELECT {', '.join(f't.{c}' for c in names)} FROM {name} t "
            "JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, id) "
            f"ON t.tenant_id = k.tenant_id AND t.{id_column} = k.id"
        )
        self._delete = (
            f"DELETE FROM {name} t USING unnest($1::text[], $2::text[]) AS k(tenant_id, id) "
            f"WHERE t.tenant_id = k.tenant_id AND t.{id_column} = k.id"
        )

    async def load(self, conn: DbConnection, keys: Iterable[Key]) -> dict[Key, Row]:
        tenants, ids = _split(keys)
        if not tenants:
            return {}
        records = await conn.fetch(self._load, tenants, ids)
        return {(r["tenant_id"], r[self.id_column]): dict(r) for r in records}

    async def upsert(self, conn: DbConnection, rows: Iterable[Row]) -> None:
        rows = list(rows)
        if rows:
            await conn.execute(self._upsert, *([row[c] for row in rows] for c in self.names))

    async def delete(self, conn: DbConnection, keys: Iterable[Key]) -> None:
        tenants, ids = _split(keys)
        if tenants:
            await conn.execute(self._delete, tenants, ids)


def _split(keys: Iterable[Key]) -> tuple[list[str], list[str]]:
    tenants: list[str] = []
    ids: list[str] = []
    for tenant_id, id_ in keys:
        tenants.append(tenant_id)
        ids.append(id_)
    return tenants, ids


async def tombstoned(conn: DbConnection, table: str, column: str, keys: Iterable[Key]) -> set[Key]:
    """Which of `keys` are in the tombstone `table` (`deleted_devices`, `erased_leads`)."""
    tenants, ids = _split(set(keys))
    if not tenants:
        return set()
    records = await conn.fetch(
        f"SELECT t.tenant_id, t.{column} FROM {table} t "
        "JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, id) "
        f"ON t.tenant_id = k.tenant_id AND t.{column} = k.id",
        tenants,
        ids,
    )
    return {(r[0], r[1]) for r in records}


async def lock_shared(conn: DbConnection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))", DELETIONS_LOCK)


async def lock_exclusive(conn: DbConnection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", DELETIONS_LOCK)
