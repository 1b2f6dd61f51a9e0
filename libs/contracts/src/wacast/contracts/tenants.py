"""Tenants and API keys, owned by the api-gateway.

Subjects `tenant.<tenant_id>` and `apikey.<key_id>` (a key is looked up by id before its
tenant is known). A key's secret is never stored: only its sha256.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing

DEFAULT_OPT_OUT_KEYWORDS = ("STOP", "UNSUBSCRIBE", "CANCEL", "BAJA", "SAIR")


class TenantEventBase(Event, frozen=True, kw_only=True):
    """The tenant is its own aggregate: `tenant_id` is the aggregate id."""

    subject_kind: ClassVar[str] = "tenant"

    def subject(self, topology: Topology) -> str:
        return topology.tenant(self.tenant_id)


class TenantCreated(TenantEventBase, frozen=True, kw_only=True):
    """`timezone` (IANA) places send windows and daily caps; `default_region` (ISO 3166
    alpha-2) normalises phones written without a country code."""

    name: str
    timezone: str = "UTC"
    default_region: str = "US"


class TenantSettingsChanged(TenantEventBase, frozen=True, kw_only=True):
    """The full new settings.

    `opt_out_keywords`: a reply equal to one (case-insensitive) opts the lead out;
    `device_daily_cap`: default daily cap of devices without their own (None: no cap);
    `pacing`: default pacing of new campaigns and sequences.
    """

    name: str
    timezone: str = "UTC"
    default_region: str = "US"
    opt_out_keywords: list[str] = msgspec.field(
        default_factory=lambda: list(DEFAULT_OPT_OUT_KEYWORDS)
    )
    device_daily_cap: int | None = None
    pacing: Pacing = msgspec.field(default_factory=Pacing)


class ApiKeyEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "apikey"

    key_id: str

    def subject(self, topology: Topology) -> str:
        return topology.api_key(self.key_id)


class ApiKeyIssued(ApiKeyEventBase, frozen=True, kw_only=True):
    """`key_hash` is the sha256 (hex) of the secret; `prefix` its first characters, shown
    to tell keys apart."""

    key_hash: str
    name: str
    prefix: str
    expires_at: datetime | None = None


class ApiKeyRevoked(ApiKeyEventBase, frozen=True, kw_only=True):
    reason: str = ""


TenantEvent = TenantCreated | TenantSettingsChanged | ApiKeyIssued | ApiKeyRevoked
