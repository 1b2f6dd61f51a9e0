"""Message rows with the lead and device they belong to, joined at query time."""

from __future__ import annotations

import asyncpg

from wacast.contracts import queries as q

SELECT = """
SELECT m.*, coalesce(l.name, '') AS lead_name, coalesce(l.phone, '') AS lead_phone,
    coalesce(d.name, '') AS device_name
FROM messages m
LEFT JOIN leads l ON l.tenant_id = m.tenant_id AND l.lead_id = m.lead_id
LEFT JOIN devices d ON d.tenant_id = m.tenant_id AND d.device_id = m.device_id
"""

GROUPS = ("pending", "success", "failed")


def message(r: asyncpg.Record) -> q.MessageRow:
    return q.MessageRow(
        id=r["message_id"],
        origin=r["origin"],
        campaign_id=r["campaign_id"] or "",
        sequence_id=r["sequence_id"] or "",
        enrollment_id=r["enrollment_id"] or "",
        step_id=r["step_id"],
        lead_id=r["lead_id"],
        lead_name=r["lead_name"],
        lead_phone=r["lead_phone"],
        device_id=r["device_id"],
        device_name=r["device_name"],
        status=r["status"],
        reason=r["reason"],
        attempt=r["attempt"],
        text=r["text"],
        media_id=r["media_id"],
        requested_at=r["requested_at"],
        queued_at=r["queued_at"],
        sent_at=r["sent_at"],
        delivered_at=r["delivered_at"],
        read_at=r["read_at"],
        failed_at=r["failed_at"],
        replied_at=r["replied_at"],
        updated_at=r["updated_at"],
    )
