"""Media rows from the MEDIA stream (the bytes stay in the object store)."""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import media as md
from wacast.report_service.projections.tables import Table
from wacast.runtime.projection import DbConnection, Envelope

MEDIA = Table(
    "media",
    "media_id",
    (
        ("tenant_id", "text"),
        ("media_id", "text"),
        ("seq", "bigint"),
        ("kind", "text"),
        ("mime", "text"),
        ("bytes", "bigint"),
        ("filename", "text"),
        ("sha256", "text"),
        ("width", "integer"),
        ("height", "integer"),
        ("source", "text"),
        ("source_url", "text"),
        ("original_bytes", "bigint"),
        ("created_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
    ),
)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> None:
    keys = {(e.event.tenant_id, e.event.media_id) for e in batch}  # type: ignore[attr-defined]
    rows = await MEDIA.load(conn, keys)
    for env in batch:
        event = env.event
        if isinstance(event, md.MediaStored):
            rows.setdefault(
                (event.tenant_id, event.media_id),
                {
                    "tenant_id": event.tenant_id,
                    "media_id": event.media_id,
                    "seq": env.seq,
                    "kind": event.kind,
                    "mime": event.mime,
                    "bytes": event.bytes,
                    "filename": event.filename,
                    "sha256": event.sha256,
                    "width": event.width,
                    "height": event.height,
                    "source": event.source,
                    "source_url": event.source_url,
                    "original_bytes": event.original_bytes or event.bytes,
                    "created_at": event.occurred_at,
                    "deleted_at": None,
                },
            )
        elif isinstance(event, md.MediaDeleted):
            row = rows.get((event.tenant_id, event.media_id))
            if row is not None:
                row["deleted_at"] = row["deleted_at"] or event.occurred_at
    await MEDIA.upsert(conn, rows.values())
