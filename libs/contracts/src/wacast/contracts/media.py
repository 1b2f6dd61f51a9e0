"""Media references, owned by the campaign service.

The bytes live in the JetStream object store (bucket `media`, key `object_name`); these
events only say what is there. Subject `media.<tenant>.<media_id>`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MediaKind


class MediaEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "media"

    media_id: str

    def subject(self, topology: Topology) -> str:
        return topology.media(self.tenant_id, self.media_id)


class MediaStored(MediaEventBase, frozen=True, kw_only=True):
    """A media item is in the object store, ready to send.

    Images are recompressed to stay under WhatsApp's comfortable size: `bytes` is what is
    stored, `original_bytes` what was uploaded or fetched. `sha256` is of the stored bytes.
    """

    kind: MediaKind
    mime: str
    bytes: int
    filename: str
    sha256: str
    object_name: str
    width: int | None = None
    height: int | None = None
    source: Literal["upload", "url"] = "upload"
    source_url: str = ""
    original_bytes: int = 0


class MediaDeleted(MediaEventBase, frozen=True, kw_only=True):
    """Gone from the object store; messages already requested with it fail."""

    reason: str = ""


MediaEvent = MediaStored | MediaDeleted
