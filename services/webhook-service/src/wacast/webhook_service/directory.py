"""Every live endpoint, in memory: who gets which public event type.

Kept by the projection as it applies `WebhookCreated` and `WebhookDeleted` (both idempotent),
loaded from the tables at start-up, so the intake decides without a database round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wacast.contracts.webhooks import subscribed


@dataclass(frozen=True, slots=True)
class Endpoint:
    tenant_id: str
    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    secret: str
    created_at: datetime


class Directory:
    def __init__(self) -> None:
        self._by_tenant: dict[str, dict[str, Endpoint]] = {}

    def add(self, endpoint: Endpoint) -> None:
        self._by_tenant.setdefault(endpoint.tenant_id, {})[endpoint.webhook_id] = endpoint

    def remove(self, tenant_id: str, webhook_id: str) -> None:
        endpoints = self._by_tenant.get(tenant_id, {})
        endpoints.pop(webhook_id, None)
        if not endpoints:
            self._by_tenant.pop(tenant_id, None)

    def get(self, tenant_id: str, webhook_id: str) -> Endpoint | None:
        return self._by_tenant.get(tenant_id, {}).get(webhook_id)

    def count(self, tenant_id: str) -> int:
        return len(self._by_tenant.get(tenant_id, {}))

    def subscribers(self, tenant_id: str, public_type: str, at: datetime) -> list[Endpoint]:
        """Endpoints of the tenant that take `public_type` and existed when it happened."""
        return [
            endpoint
            for endpoint in self._by_tenant.get(tenant_id, {}).values()
            if endpoint.created_at <= at and subscribed(list(endpoint.event_types), public_type)
        ]
