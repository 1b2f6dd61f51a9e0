"""Tenants and API keys, owned by the api-gateway.

Subjects `tenant.<tenant_id>` and `apikey.<key_id>` (a key is looked up by id before its
tenant is known). A key's secret is never stored: only its sha256.

An API key reads `wk_<key id>_<secret>`: the key id (12 hex characters) finds the key, the
secret (43 URL-safe characters, 256 random bits) proves it. `key_hash` is the sha256 of the
whole key. A key chosen by hand in another shape (e.g. `WACAST_DEV_API_KEY`) is accepted
too: its id is then derived from its hash (`key_id_of`).
"""

from __future__ import annotations

import hashlib
import secrets
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


KEY_PREFIX = "wk"


def new_api_key() -> str:
    """A fresh random key, `wk_<key id>_<secret>`; shown once, never stored."""
    return f"{KEY_PREFIX}_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str:
    """The id a presented key is looked up by; hand-made keys get one from their hash."""
    parts = key.split("_", 2)
    if (
        len(parts) == 3
        and parts[0] == KEY_PREFIX
        and len(parts[1]) == 12
        and all(c in "0123456789abcdef" for c in parts[1])
        and parts[2]
    ):
        return parts[1]
    return "x" + key_hash(key)[:15]


def key_display_prefix(key: str) -> str:
    """What lists show to tell keys apart (never enough to use the key)."""
    return key[:15] if key.startswith(f"{KEY_PREFIX}_") else key[:4]
