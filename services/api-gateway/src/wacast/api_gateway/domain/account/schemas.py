"""Request and response shapes of `/api/v1/overview` and `/api/v1/keys`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from wacast.contracts import queries as q


class ApiKeyCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    expires_at: datetime | None = None


class NewApiKey(q.ApiKey, frozen=True, kw_only=True):
    """`key` is shown this once: only its hash is kept."""

    key: str
    seq: int
    stream: str
