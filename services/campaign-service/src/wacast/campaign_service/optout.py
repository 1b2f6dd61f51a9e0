"""Opt-out keywords: a lead that writes one of its tenant's keywords is opted out.

A durable consumer of `inbound.>` (what people write to the tenant's devices, appended by the
gateway). A message from a known lead whose whole text is a keyword (`domain/keywords.py`)
opts the lead out with `source="keyword"` by the same path as the API's opt-out:
`LeadOptedOut`, then the lead-scope `SendsWithdrawn` that cancels what waits in lanes. A
redelivered message finds the lead opted out (nothing more is appended), and a message
written before the lead's latest opt-in does not count.

The tenant's keywords are its last `TenantSettingsChanged` (the settings event carries the
full settings), read from the tenant's subject for each candidate message, so a change
applies from the next message on; a tenant that never changed them has the defaults.

No confirmation reply is sent: it would be a message to a lead whose sends the withdrawal
has just cancelled (scope lead), so it would need an origin the lanes do not withdraw.
"""

from __future__ import annotations

import logging

from wacast.campaign_service.context import Deps
from wacast.campaign_service.domain.keywords import matching
from wacast.campaign_service.leads import LeadCommands
from wacast.contracts.messages import InboundMessageReceived
from wacast.contracts.streams import TENANTS
from wacast.contracts.tenants import DEFAULT_OPT_OUT_KEYWORDS, TenantSettingsChanged
from wacast.runtime.projection import Envelope

log = logging.getLogger("wacast.campaigns.optout")


class OptOutKeywords:
    def __init__(self, deps: Deps, leads: LeadCommands) -> None:
        self.deps = deps
        self.leads = leads

    async def keywords(self, tenant_id: str) -> list[str]:
        _, last = await self.deps.last(TENANTS, self.deps.topology.tenant(tenant_id))
        if isinstance(last, TenantSettingsChanged):
            return last.opt_out_keywords
        return list(DEFAULT_OPT_OUT_KEYWORDS)

    async def handle(self, envelope: Envelope) -> None:
        event = envelope.event
        if not isinstance(event, InboundMessageReceived) or not event.lead_id or not event.text:
            return
        keyword = matching(event.text, await self.keywords(event.tenant_id))
        if keyword is None:
            return
        reply = await self.leads.opt_out_by_keyword(
            event.tenant_id, event.lead_id, keyword, event.occurred_at
        )
        if reply.seq:
            log.info("lead %s opted out by keyword %s", event.lead_id, keyword)
