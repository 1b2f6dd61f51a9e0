"""Query handlers: every report query on NATS request/reply, reading your own writes.

A query with `after_seq` first waits (bounded by `query_wait_seconds`) until the projection
has applied that sequence of `after_stream` (default: the stream the query is about); when
the wait runs out it answers with what it has, like any eventually consistent read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import msgspec
from faststream.nats import NatsBroker

from wacast.contracts import queries as q
from wacast.contracts.base import Reply
from wacast.contracts.streams import BY_KEY
from wacast.contracts.subjects import Topology
from wacast.report_service.queries import (
    campaigns,
    conversations,
    devices,
    leads,
    media,
    overview,
    sequences,
)
from wacast.report_service.queries.common import BadRequest, NotFound
from wacast.runtime.clock import Clock
from wacast.runtime.commands import problem, serve_query
from wacast.runtime.projection import DbConnection, ProjectionRunner

Q = TypeVar("Q", bound=q.Query)
QUEUE = "reports"


class Reader:
    """Answers queries from the query pool once the runner has caught up far enough."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        runner: ProjectionRunner,
        clock: Clock,
        *,
        wait_seconds: float,
        receipt_window: timedelta,
    ) -> None:
        self.pool = pool
        self.runner = runner
        self.clock = clock
        self.wait_seconds = wait_seconds
        self.window = receipt_window

    def handler(
        self, stream: str, read: Callable[[DbConnection, Any], Awaitable[msgspec.Struct]]
    ) -> Callable[[Any], Awaitable[msgspec.Struct | Reply]]:
        async def handle(query: q.Query) -> msgspec.Struct | Reply:
            if query.after_seq:
                await self.caught_up(query.after_stream or stream, query.after_seq)
            try:
                async with self.pool.acquire() as conn:
                    return await read(conn, query)
            except NotFound as exc:
                return problem("not_found", str(exc), 404)
            except BadRequest as exc:
                return problem("invalid_request", "The query is not valid", 422, str(exc))

        return handle

    async def caught_up(self, stream: str, seq: int) -> None:
        """Wait until `seq` of `stream` is applied, unless the stream never stored it (a
        sequence from the future, or from another installation: nothing to wait for)."""
        if self.runner.position(stream) >= seq:
            return
        info = await self.runner.js.stream_info(BY_KEY[stream].name(self.runner.topology))
        if seq <= info.state.last_seq:
            await self.runner.wait_until(stream, seq, self.wait_seconds)

    def routes(
        self,
    ) -> list[
        tuple[str, type[q.Query], str, Callable[[DbConnection, Any], Awaitable[msgspec.Struct]]]
    ]:
        now = self.clock.now
        window = self.window
        return [
            (q.DEVICES, q.ListDevices, "DEVICES", lambda c, r: devices.list_devices(c, r, now())),
            (q.DEVICE, q.GetOne, "DEVICES", lambda c, r: devices.get_device(c, r, now())),
            (q.DEVICE_IMPACT, q.GetOne, "DEVICES", devices.deletion_impact),
            (q.LEADS, q.ListLeads, "LEADS", leads.list_leads),
            (q.LEAD, q.GetOne, "LEADS", leads.get_lead),
            (q.LEAD_IMPORT, q.GetLeadImport, "LEADS", leads.get_import),
            (
                q.LEAD_CONVERSATION,
                q.GetLeadConversation,
                "MESSAGES",
                conversations.get_conversation,
            ),
            (q.MEDIA_LIST, q.ListMedia, "MEDIA", media.list_media),
            (q.MEDIA, q.GetOne, "MEDIA", media.get_media),
            (
                q.CAMPAIGNS,
                q.ListCampaigns,
                "CAMPAIGNS",
                lambda c, r: campaigns.list_campaigns(c, r, now(), window),
            ),
            (
                q.CAMPAIGN,
                q.GetOne,
                "CAMPAIGNS",
                lambda c, r: campaigns.get_campaign(c, r, now(), window),
            ),
            (q.CAMPAIGN_REPORT, q.GetOne, "MESSAGES", campaigns.report),
            (q.CAMPAIGN_MESSAGES, q.ListCampaignMessages, "MESSAGES", campaigns.list_messages),
            (q.SEQUENCES, q.ListSequences, "SEQUENCES", sequences.list_sequences),
            (q.SEQUENCE, q.GetOne, "SEQUENCES", sequences.get_sequence),
            (q.ENROLLMENTS, q.ListEnrollments, "SEQUENCES", sequences.list_enrollments),
            (q.OVERVIEW, q.Query, "DEVICES", lambda c, r: overview.overview(c, r, now(), window)),
        ]

    def serve(self, broker: NatsBroker, topology: Topology) -> None:
        for name, request_type, stream, read in self.routes():
            serve_query(
                broker, topology, name, request_type, self.handler(stream, read), queue=QUEUE
            )
