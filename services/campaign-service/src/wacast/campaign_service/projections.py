"""The campaign-service's private tables, registered for `wacast projections rebuild`."""

from __future__ import annotations

from wacast.campaign_service.adapters import outcomes, private
from wacast.runtime.registry import ProjectionRegistration

REGISTRATIONS = [
    ProjectionRegistration(
        name=private.NAME,
        schema=private.SCHEMA,
        factory=private.PrivateProjection,
        description="tenants' regions, devices, leads for audiences, imports, campaign status",
    ),
    ProjectionRegistration(
        name=outcomes.NAME,
        schema=outcomes.SCHEMA,
        factory=outcomes.OutcomesProjection,
        description="per-campaign requested counts and message outcomes (completion)",
    ),
]
