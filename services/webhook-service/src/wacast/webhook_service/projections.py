"""The webhook-service's tables, registered for `wacast projections rebuild`."""

from __future__ import annotations

from wacast.runtime.registry import ProjectionRegistration
from wacast.webhook_service.adapters.tables import WebhookTables
from wacast.webhook_service.directory import Directory
from wacast.webhook_service.settings import Settings


def _tables() -> WebhookTables:
    # A rebuild only writes tables; the running service keeps its own directory.
    return WebhookTables(Directory())


REGISTRATIONS = [
    ProjectionRegistration(
        name=WebhookTables.name,
        schema=Settings().webhooks_schema,
        factory=_tables,
        description="webhook endpoints and their delivery log (which is also the send queue)",
    )
]
