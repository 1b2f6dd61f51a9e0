"""The report-service's read models: one projection, `reports`, over every stream.

Registered for `wacast projections rebuild` through the `wacast.projections` entry point.
Streams are listed so that a replay from zero applies deletions (devices) before what they
remove; the tombstones make the tables the same in any order anyway (invariant 7).
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts.streams import (
    CAMPAIGNS,
    DEVICES,
    LEADS,
    MEDIA,
    MESSAGES,
    SEQUENCES,
    TENANTS,
    StreamSpec,
)
from wacast.report_service.projections import (
    campaigns,
    conversations,
    devices,
    leads,
    media,
    messages,
    sequences,
    tenants,
)
from wacast.report_service.projections.schema import DDL
from wacast.report_service.projections.tables import Key
from wacast.runtime.projection import DbConnection, Envelope
from wacast.runtime.registry import ProjectionRegistration

NAME = "reports"
SCHEMA = "reports"
MOVED_LEADS = 1000
"""Leads remembered for live hints between two ticks; more (a bulk change) are not hinted."""


class Reports:
    """Applies each stream's batches to its tables; remembers which campaigns, sequences and
    leads moved, so that live progress can be published for them (a hint, not state)."""

    name = NAME
    streams: Sequence[StreamSpec] = (DEVICES, TENANTS, LEADS, MEDIA, CAMPAIGNS, SEQUENCES, MESSAGES)

    def __init__(self) -> None:
        self.moved_campaigns: set[Key] = set()
        self.moved_sequences: set[Key] = set()
        self.moved_leads: set[Key] = set()

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(DDL)

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        stream = batch[0].stream
        if stream == DEVICES.key:
            await devices.apply(conn, batch)
        elif stream == TENANTS.key:
            await tenants.apply(conn, batch)
        elif stream == LEADS.key:
            self._leads_moved(await leads.apply(conn, batch))
        elif stream == MEDIA.key:
            await media.apply(conn, batch)
        elif stream == CAMPAIGNS.key:
            self.moved_campaigns |= await campaigns.apply(conn, batch)
        elif stream == SEQUENCES.key:
            self.moved_sequences |= await sequences.apply(conn, batch)
        elif stream == MESSAGES.key:
            self.moved_campaigns |= await messages.apply(conn, batch)
            self._leads_moved(await conversations.apply(conn, batch))

    def _leads_moved(self, keys: set[Key]) -> None:
        room = MOVED_LEADS - len(self.moved_leads)
        if room > 0:
            self.moved_leads.update(list(keys)[:room])

    def take_moved(self) -> tuple[set[Key], set[Key]]:
        campaigns_, sequences_ = self.moved_campaigns, self.moved_sequences
        self.moved_campaigns, self.moved_sequences = set(), set()
        return campaigns_, sequences_

    def take_moved_leads(self) -> set[Key]:
        moved, self.moved_leads = self.moved_leads, set()
        return moved


REGISTRATIONS = [
    ProjectionRegistration(
        name=NAME,
        schema=SCHEMA,
        factory=Reports,
        description="Device board, leads, campaigns and their reports, sequences, overview",
    )
]
