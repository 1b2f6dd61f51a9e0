"""Request and response shapes of `/api/v1/overview`, `/api/v1/keys` and
`/api/v1/account/settings`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wacast.api_gateway.tenants import MAX_KEYWORD_LENGTH, MAX_KEYWORDS
from wacast.contracts import queries as q
from wacast.contracts.values import Pacing


class ApiKeyCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    expires_at: datetime | None = None


class NewApiKey(q.ApiKey, frozen=True, kw_only=True):
    """`key` is shown this once: only its hash is kept."""

    key: str
    seq: int
    stream: str


Keyword = Annotated[str, Meta(min_length=1, max_length=MAX_KEYWORD_LENGTH)]
Cap = Annotated[int, Meta(ge=0, le=1_000_000)]


class TenantSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The tenant's settings: `timezone` (IANA) places send windows and daily caps;
    `default_region` (ISO 3166 alpha-2) completes phones written without a country code; a
    reply equal to one of `opt_out_keywords` (case-insensitive) opts the lead out;
    `device_daily_cap` is the cap of devices without their own (null: none); `pacing` the
    default of new campaigns and sequences."""

    name: str
    timezone: str
    default_region: str
    opt_out_keywords: list[str]
    device_daily_cap: int | None = None
    pacing: Pacing
    updated_at: datetime


class TenantSettingsUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """The new settings; a field left out keeps its current value."""

    name: Annotated[str, Meta(min_length=1, max_length=100)] | UnsetType = UNSET
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    default_region: Annotated[str, Meta(pattern="^[A-Z]{2}$")] | UnsetType = UNSET
    opt_out_keywords: (
        Annotated[list[Keyword], Meta(min_length=1, max_length=MAX_KEYWORDS)] | UnsetType
    ) = UNSET
    device_daily_cap: Cap | UnsetType | None = UNSET
    pacing: Pacing | UnsetType = UNSET


class TenantSettingsResult(TenantSettings, frozen=True, kw_only=True):
    """The settings after a write, with the write's `seq` and `stream`."""

    seq: int
    stream: str
