"""Lead events, owned by the campaign service.

Personal data (phone, name, attributes) lives only on the lead's own subject
`lead.<tenant>.<lead_id>`, so erasing a lead purges that subject (and the lead's message
subjects) and leaves a bare `LeadErased`. Phone claims (`leadphone.<tenant>.<phone_key>`)
keep a phone unique per tenant: appended with expected sequence 0, they carry a hash, not
the phone (see `ids.phone_key`). Imports (`leadimport.<tenant>.<import_id>`) record
progress and row numbers only, never row contents.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import LeadStatus, RowError


class LeadEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "lead"

    lead_id: str

    def subject(self, topology: Topology) -> str:
        return topology.lead(self.tenant_id, self.lead_id)


class LeadCreated(LeadEventBase, frozen=True, kw_only=True):
    """A new lead. `phone` is E.164 (normalised with the tenant's default region);
    `device_id` is the device that talks to it ("" until one is assigned)."""

    phone: str
    name: str = ""
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    import_id: str = ""
    """The import that created it, "" when created one by one."""


class LeadUpdated(LeadEventBase, frozen=True, kw_only=True):
    """Contact details changed; a None field is unchanged. `attributes` replaces the whole
    map. Status, tags, device and consent have their own events."""

    phone: str | None = None
    name: str | None = None
    attributes: dict[str, str] | None = None


class LeadStatusChanged(LeadEventBase, frozen=True, kw_only=True):
    status: LeadStatus
    previous_status: LeadStatus


class LeadTagsChanged(LeadEventBase, frozen=True, kw_only=True):
    """`tags` is the full new set; `added` and `removed` say what moved (for triggers)."""

    tags: list[str]
    added: list[str] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)


class LeadDeviceAssigned(LeadEventBase, frozen=True, kw_only=True):
    """From now on the lead is messaged through `device_id` (sequences always are)."""

    device_id: str
    previous_device_id: str = ""


class LeadOptedOut(LeadEventBase, frozen=True, kw_only=True):
    """The lead must get nothing more; waiting messages to it are cancelled.

    `source`: `api`, `keyword` (replied with an opt-out keyword) or `import`.
    """

    reason: str = ""
    source: Literal["api", "keyword", "import"] = "api"


class LeadOptedIn(LeadEventBase, frozen=True, kw_only=True):
    source: Literal["api", "keyword", "import"] = "api"


class LeadDeleted(LeadEventBase, frozen=True, kw_only=True):
    """The lead is gone from lists and audiences; its phone claim is released.

    `reason`: `requested` or `device_deleted`. Its data stays on its subject until an
    erasure purges it.
    """

    reason: str = "requested"


class LeadErased(LeadEventBase, frozen=True, kw_only=True):
    """Tombstone left after the lead's subjects were purged: ids only, no personal data.
    Read models drop every row of the lead on it."""


class LeadPhoneEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "leadphone"

    phone_key: str
    lead_id: str

    def subject(self, topology: Topology) -> str:
        return topology.lead_phone(self.tenant_id, self.phone_key)


class LeadPhoneClaimed(LeadPhoneEventBase, frozen=True, kw_only=True):
    """`lead_id` holds the phone behind `phone_key`; a second lead cannot claim it."""


class LeadPhoneReleased(LeadPhoneEventBase, frozen=True, kw_only=True):
    """The phone is free again (lead deleted or its phone changed)."""


class LeadImportEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "leadimport"

    import_id: str

    def subject(self, topology: Topology) -> str:
        return topology.lead_import(self.tenant_id, self.import_id)


class LeadImportStarted(LeadImportEventBase, frozen=True, kw_only=True):
    """A CSV import began. The file waits in the object store under `object_name`; rows
    without their own device, status or tags take the defaults given here."""

    filename: str
    object_name: str = ""
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    update_existing: bool = False
    """A row whose phone exists already updates that lead instead of failing."""
    total_rows: int | None = None


class LeadImportProgressed(LeadImportEventBase, frozen=True, kw_only=True):
    """Running totals after `rows_done` rows; also the import's resume point.
    `total_rows` is the file's number of data rows once counted (None before)."""

    rows_done: int
    created: int = 0
    updated: int = 0
    failed: int = 0
    total_rows: int | None = None


class LeadImportRowsFailed(LeadImportEventBase, frozen=True, kw_only=True):
    errors: list[RowError]


class LeadImportCompleted(LeadImportEventBase, frozen=True, kw_only=True):
    rows: int
    created: int = 0
    updated: int = 0
    failed: int = 0


class LeadImportFailed(LeadImportEventBase, frozen=True, kw_only=True):
    """The import stopped (unreadable file, missing phone column...); rows done stay."""

    reason: str
    detail: str = ""


LeadEvent = (
    LeadCreated
    | LeadUpdated
    | LeadStatusChanged
    | LeadTagsChanged
    | LeadDeviceAssigned
    | LeadOptedOut
    | LeadOptedIn
    | LeadDeleted
    | LeadErased
    | LeadPhoneClaimed
    | LeadPhoneReleased
    | LeadImportStarted
    | LeadImportProgressed
    | LeadImportRowsFailed
    | LeadImportCompleted
    | LeadImportFailed
)
