"""Per-campaign counters of send requests and message outcomes, from the MESSAGES stream.

Projection `campaigns_outcomes` (its own schema, so it rebuilds on its own). The fan-out
cursor events give how many messages were requested and whether the fan-out is done; the
outcome events (`MessageSent`, `MessageFailed` on `msg.>`, `MessageCancelled` on `lane.>`)
give each campaign message its final outcome once, whatever the gateway repeats: a message
row per outcome makes counting idempotent. Receipts (`MessageDelivered`, `MessageRead`)
count once per message too. A campaign is complete when its fan-out is done and
`sent + failed + cancelled >= requested`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, StreamSpec
from wacast.runtime.projection import DbConnection, Envelope

NAME = "campaigns_outcomes"
SCHEMA = "campaigns_outcomes"

DDL = """
CREATE TABLE IF NOT EXISTS progress (
    tenant_id text NOT NULL,
    campaign_id text NOT NULL,
    requested bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    fanout_done boolean NOT NULL DEFAULT false,
    sent bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0,
    delivered bigint NOT NULL DEFAULT 0,
    read bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE TABLE IF NOT EXISTS outcomes (
    tenant_id text NOT NULL,
    message_id text NOT NULL,
    campaign_id text NOT NULL,
    outcome text NOT NULL,
    delivered boolean NOT NULL DEFAULT false,
    read boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, message_id)
);
"""

_FANOUT = (
    "INSERT INTO progress (tenant_id, campaign_id, requested, skipped, fanout_done) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, campaign_id) DO UPDATE SET "
    "requested = GREATEST(progress.requested, $3), skipped = GREATEST(progress.skipped, $4), "
    "fanout_done = progress.fanout_done OR $5"
)
_OUTCOME = (
    "INSERT INTO outcomes (tenant_id, message_id, campaign_id, outcome) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
_COUNTERS = ("sent", "failed", "cancelled", "delivered", "read")


async def _bump(conn: DbConnection, tenant_id: str, campaign_id: str, counter: str) -> None:
    assert counter in _COUNTERS
    await conn.execute(
        f"INSERT INTO progress (tenant_id, campaign_id, {counter}) VALUES ($1, $2, 1) "
        f"ON CONFLICT (tenant_id, campaign_id) DO UPDATE SET {counter} = progress.{counter} + 1",
        tenant_id,
        campaign_id,
    )


async def _final(
    conn: DbConnection, e: m.MessageOutcomeBase | m.MessageCancelled, what: str
) -> None:
    new = await conn.fetchval(_OUTCOME, e.tenant_id, e.message_id, e.origin_id, what)
    if new:
        await _bump(conn, e.tenant_id, e.origin_id, what)


async def _receipt(conn: DbConnection, e: m.MessageOutcomeBase, flag: str) -> None:
    """A receipt implies the message was sent (and a read one that it was delivered)."""
    await _final(conn, e, "sent")
    for name in ("delivered", "read") if flag == "read" else ("delivered",):
        changed = await conn.fetchval(
            f"UPDATE outcomes SET {name} = true WHERE tenant_id = $1 AND message_id = $2 "
            f"AND NOT {name} RETURNING 1",
            e.tenant_id,
            e.message_id,
        )
        if changed:
            await _bump(conn, e.tenant_id, e.origin_id, name)


class OutcomesProjection:
    name = NAME
    streams: Sequence[StreamSpec] = (MESSAGES,)
    kinds = {"MESSAGES": ("msg", "lane", "fanout")}
    """Not the send requests themselves: the cursors count them."""

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.changed = changed
        """Called after a batch that moved a campaign's counters: completion looks again."""

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(DDL)

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        moved = False
        for envelope in batch:
            moved = await _apply(conn, envelope.event) or moved
        if moved:
            self.changed()


async def _apply(conn: DbConnection, e: object) -> bool:
    """Write one event's effect; False when it does not concern a campaign's counters."""
    if getattr(e, "origin", "campaign") != "campaign":
        return False
    match e:
        case m.CampaignFanoutProgressed() | m.CampaignFanoutCompleted():
            done = isinstance(e, m.CampaignFanoutCompleted)
            await conn.execute(_FANOUT, e.tenant_id, e.campaign_id, e.requested, e.skipped, done)
        case m.MessageSent():
            await _final(conn, e, "sent")
        case m.MessageFailed():
            await _final(conn, e, "failed")
        case m.MessageCancelled():
            await _final(conn, e, "cancelled")
        case m.MessageDelivered():
            await _receipt(conn, e, "delivered")
        case m.MessageRead():
            await _receipt(conn, e, "read")
        case _:
            return False
    return True
