"""Request and response shapes of `/api/v1/leads`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from wacast.contracts import queries as q
from wacast.contracts.values import LeadStatus

Phone = Annotated[str, Meta(min_length=1, max_length=32)]
Name = Annotated[str, Meta(max_length=200)]
Tag = Annotated[str, Meta(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], Meta(max_length=100)]
Attributes = Annotated[dict[str, Annotated[str, Meta(max_length=1000)]], Meta(max_length=100)]
Id = Annotated[str, Meta(max_length=128)]


class LeadCreate(msgspec.Struct, frozen=True, kw_only=True):
    """`phone` as written; it is normalised to E.164 with the tenant's default region.
    Without `device_id` the lead is assigned to one of the tenant's devices."""

    phone: Phone
    name: Name = ""
    device_id: Id = ""
    status: LeadStatus = "prospect"
    tags: Tags = msgspec.field(default_factory=list)
    attributes: Attributes = msgspec.field(default_factory=dict)


class LeadUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Change what is given (null or absent: unchanged); `attributes` replaces the map."""

    phone: Phone | None = None
    name: Name | None = None
    attributes: Attributes | None = None
    status: LeadStatus | None = None
    tags: Tags | None = None
    device_id: Id | None = None


class OptOut(msgspec.Struct, frozen=True, kw_only=True):
    reason: Annotated[str, Meta(max_length=200)] = ""


class ImportAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The import runs in the background: follow it at `/leads/imports/{import_id}`."""

    import_id: str
    seq: int
    stream: str


class LeadResult(q.Lead, frozen=True, kw_only=True):
    """The lead after a write, with the write's `seq` and `stream`."""

    seq: int
    stream: str
