"""The streams: which subjects each holds, how it is stored, which union decodes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wacast.contracts import (
    campaigns,
    devices,
    leads,
    media,
    messages,
    sequences,
    tenants,
    webhooks,
)
from wacast.contracts.subjects import Topology
from wacast.contracts.versioning import StreamCodec

DUPLICATE_WINDOW_SECONDS = 120.0


@dataclass(frozen=True)
class StreamSpec:
    key: str
    """Short name; the stream's real name is `Topology.stream(key)`."""
    kinds: tuple[str, ...]
    """Subject kinds (the token after the prefix) the stream holds."""
    union: Any
    description: str

    def name(self, topology: Topology) -> str:
        return topology.stream(self.key)

    def subjects(self, topology: Topology) -> list[str]:
        return [topology.all_of(kind) for kind in self.kinds]

    def config(self, topology: Topology, replicas: int = 1) -> dict[str, Any]:
        """Keyword arguments for `nats.js.api.StreamConfig`."""
        return {
            "name": self.name(topology),
            "subjects": self.subjects(topology),
            "description": self.description,
            "storage": "file",
            "retention": "limits",
            "discard": "old",
            "num_replicas": replicas,
            "duplicate_window": DUPLICATE_WINDOW_SECONDS,
            "allow_direct": True,
            "allow_rollup_hdrs": False,
            "deny_delete": False,
            "deny_purge": False,
            "allow_atomic": True,
            "max_msgs_per_subject": -1,
        }


DEVICES = StreamSpec("DEVICES", ("device",), devices.DeviceEvent, "Device aggregates")
LEADS = StreamSpec(
    "LEADS",
    ("lead", "leadphone", "leadimport"),
    leads.LeadEvent,
    "Leads (personal data lives only on per-lead subjects), phone claims, imports",
)
MEDIA = StreamSpec(
    "MEDIA", ("media",), media.MediaEvent, "Media references (bytes in the object store)"
)
CAMPAIGNS = StreamSpec("CAMPAIGNS", ("campaign",), campaigns.CampaignEvent, "Campaign aggregates")
MESSAGES = StreamSpec(
    "MESSAGES",
    ("sendreq", "lane", "lanecp", "msg", "sendctl", "fanout", "inbound"),
    messages.MessageEvent,
    "Send requests, device lanes and their checkpoints, message outcomes, send controls, "
    "fan-out cursors and inbound messages",
)
SEQUENCES = StreamSpec(
    "SEQUENCES", ("sequence", "enrollment"), sequences.SequenceEvent, "Sequences and enrollments"
)
TENANTS = StreamSpec("TENANTS", ("tenant", "apikey"), tenants.TenantEvent, "Tenants and API keys")
WEBHOOKS = StreamSpec(
    "WEBHOOKS",
    ("webhook", "whdelivery"),
    webhooks.WebhookEvent,
    "Webhook endpoints and the log of deliveries to them (source events by reference)",
)

ALL: tuple[StreamSpec, ...] = (
    DEVICES,
    LEADS,
    MEDIA,
    CAMPAIGNS,
    MESSAGES,
    SEQUENCES,
    TENANTS,
    WEBHOOKS,
)
BY_KEY: dict[str, StreamSpec] = {spec.key: spec for spec in ALL}
BY_KIND: dict[str, StreamSpec] = {kind: spec for spec in ALL for kind in spec.kinds}
"""Which stream holds a subject kind, e.g. `BY_KIND[event.subject_kind]`."""

DEAD_LETTER_KEY = "DLQ"
MEDIA_BUCKET = "media"
SESSIONS_BUCKET = "sessions"
LEASES_BUCKET = "leases"
CLOCK_BUCKET = "clock"

_codecs: dict[str, StreamCodec] = {}


def codec(spec: StreamSpec) -> StreamCodec:
    """One decoder per stream, built once."""
    found = _codecs.get(spec.key)
    if found is None:
        found = _codecs[spec.key] = StreamCodec(spec.union)
    return found


def spec_of_stream_name(topology: Topology, name: str) -> StreamSpec:
    for spec in ALL:
        if spec.name(topology) == name:
            return spec
    raise KeyError(name)
