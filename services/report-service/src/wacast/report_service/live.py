"""Live progress: campaign and sequence counts published on the tenant's live subject, and
a `LiveLead` hint for each lead that changed or wrote.

The projection remembers what moved; about once a second the counts of those campaigns and
sequences are read back (committed data only) and published on core NATS, where the
api-gateway forwards them to WebSocket clients. Missing a tick loses nothing: the next
one, or a query, carries the same numbers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg
from nats.aio.client import Client

from wacast.contracts import queries as q
from wacast.contracts.base import encode
from wacast.contracts.subjects import Topology
from wacast.report_service.projections import Reports
from wacast.report_service.queries import campaigns, sequences
from wacast.report_service.queries.common import NotFound
from wacast.runtime.clock import Clock

log = logging.getLogger("wacast.reports.live")


async def publish_progress(
    nc: Client,
    topology: Topology,
    pool: asyncpg.Pool,
    projection: Reports,
    clock: Clock,
    window: timedelta,
) -> None:
    """Publish what moved since the last call."""
    moved_campaigns, moved_sequences = projection.take_moved()
    now = clock.now()
    for tenant_id, lead_id in sorted(projection.take_moved_leads()):
        hint = q.LiveLead(at=now, lead_id=lead_id)
        await nc.publish(topology.live(tenant_id), encode(hint))
    if not moved_campaigns and not moved_sequences:
        return
    async with pool.acquire() as conn:
        for tenant_id, campaign_id in sorted(moved_campaigns):
            try:
                found = await campaigns.get_campaign(
                    conn, q.GetOne(tenant_id=tenant_id, id=campaign_id), now, window
                )
            except NotFound:
                continue
            update = q.LiveCampaignProgress(
                at=now, campaign_id=campaign_id, counts=found.counts, percent=found.percent
            )
            await nc.publish(topology.live(tenant_id), encode(update))
        for tenant_id, sequence_id in sorted(moved_sequences):
            done = await sequences.progress(conn, tenant_id, [sequence_id])
            await nc.publish(
                topology.live(tenant_id),
                encode(
                    q.LiveSequenceProgress(
                        at=now, sequence_id=sequence_id, progress=done[sequence_id]
                    )
                ),
            )


async def keep_publishing(
    nc: Client,
    topology: Topology,
    pool: asyncpg.Pool,
    projection: Reports,
    clock: Clock,
    window: timedelta,
    interval: float,
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await publish_progress(nc, topology, pool, projection, clock, window)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("live progress skipped: %r", exc)
