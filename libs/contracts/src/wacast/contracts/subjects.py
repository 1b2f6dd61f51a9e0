"""Subject and stream names.

Every subject starts with a namespace prefix (default `wacast`) so that installations and
tests can share one nats-server without seeing each other. A subject is one aggregate:
`<prefix>.<kind>.<tenant>.<id>`; send requests also carry their device's partition.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

PARTITIONS = 64
"""Fixed number of send partitions. Changing it re-homes devices: treat as a migration."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_token(value: str, what: str = "id") -> str:
    """Ids become subject tokens: refuse anything that could change a subject's shape."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-128 characters of A-Z, a-z, 0-9, _ or -")
    return value


def partition_of(device_id: str) -> int:
    """crc32, never Python's salted hash(): every process and language agrees."""
    return zlib.crc32(device_id.encode()) % PARTITIONS


@dataclass(frozen=True, slots=True)
class Topology:
    """Names of streams, subjects, buckets for one namespace."""

    prefix: str = "wacast"

    def __post_init__(self) -> None:
        check_token(self.prefix, "namespace")

    # streams --------------------------------------------------------------
    def stream(self, name: str) -> str:
        return f"{self.prefix.upper().replace('-', '_')}_{name}"

    def bucket(self, name: str) -> str:
        return f"{self.prefix}_{name}".replace("-", "_")

    # aggregate subjects ---------------------------------------------------
    def aggregate(self, kind: str, tenant_id: str, aggregate_id: str) -> str:
        return (
            f"{self.prefix}.{kind}.{check_token(tenant_id, 'tenant')}.{check_token(aggregate_id)}"
        )

    def device(self, tenant_id: str, device_id: str) -> str:
        return self.aggregate("device", tenant_id, device_id)

    def lead(self, tenant_id: str, lead_id: str) -> str:
        return self.aggregate("lead", tenant_id, lead_id)

    def lead_phone(self, tenant_id: str, phone_key: str) -> str:
        """Claim subject that makes a phone unique per tenant (key is a hash, not the phone)."""
        return self.aggregate("leadphone", tenant_id, phone_key)

    def lead_import(self, tenant_id: str, import_id: str) -> str:
        return self.aggregate("leadimport", tenant_id, import_id)

    def media(self, tenant_id: str, media_id: str) -> str:
        return self.aggregate("media", tenant_id, media_id)

    def campaign(self, tenant_id: str, campaign_id: str) -> str:
        return self.aggregate("campaign", tenant_id, campaign_id)

    def sequence(self, tenant_id: str, sequence_id: str) -> str:
        return self.aggregate("sequence", tenant_id, sequence_id)

    def enrollment(self, tenant_id: str, enrollment_id: str) -> str:
        return self.aggregate("enrollment", tenant_id, enrollment_id)

    def tenant(self, tenant_id: str) -> str:
        return f"{self.prefix}.tenant.{check_token(tenant_id, 'tenant')}"

    def api_key(self, key_id: str) -> str:
        """Keys are looked up by id before the tenant is known."""
        return f"{self.prefix}.apikey.{check_token(key_id, 'key id')}"

    # the message stream ---------------------------------------------------
    def send_request(self, tenant_id: str, device_id: str, message_id: str) -> str:
        """One subject per message, appended once with expected sequence 0 (unique forever)."""
        p = partition_of(device_id)
        return (
            f"{self.prefix}.sendreq.{p}.{check_token(tenant_id, 'tenant')}."
            f"{check_token(device_id, 'device id')}.{check_token(message_id, 'message id')}"
        )

    def send_requests_of_partition(self, partition: int) -> str:
        return f"{self.prefix}.sendreq.{partition}.>"

    def send_requests_of_device(self, tenant_id: str, device_id: str) -> str:
        return self._of_device("sendreq", tenant_id, device_id) + ".*"

    def lane(self, tenant_id: str, device_id: str) -> str:
        """A device's send lane: pending entries and dispatch records, fenced by sequence."""
        return self._of_device("lane", tenant_id, device_id)

    def lane_checkpoint(self, tenant_id: str, device_id: str) -> str:
        """Latest checkpoint of a lane (read with a direct get of the subject's last)."""
        return self._of_device("lanecp", tenant_id, device_id)

    def lanes_of_partition(self, partition: int) -> str:
        return f"{self.prefix}.lane.{partition}.>"

    def _of_device(self, kind: str, tenant_id: str, device_id: str) -> str:
        return (
            f"{self.prefix}.{kind}.{partition_of(device_id)}."
            f"{check_token(tenant_id, 'tenant')}.{check_token(device_id, 'device id')}"
        )

    def message(self, tenant_id: str, message_id: str) -> str:
        """Outcomes of one message (sent, delivered, read, failed)."""
        return self.aggregate("msg", tenant_id, message_id)

    def inbound(self, tenant_id: str, lead_or_contact: str) -> str:
        """What a lead (or an unknown contact, by phone key) wrote to the tenant's devices."""
        return self.aggregate("inbound", tenant_id, lead_or_contact)

    def send_control(self, tenant_id: str, scope: str, scope_id: str) -> str:
        """Holds, releases and withdrawals of waiting sends of a campaign, enrollment or lead."""
        return (
            f"{self.prefix}.sendctl.{check_token(tenant_id, 'tenant')}."
            f"{check_token(scope, 'scope')}.{check_token(scope_id, 'scope id')}"
        )

    def fanout(self, tenant_id: str, campaign_id: str) -> str:
        """Fan-out cursor of a campaign; shares the message stream so batches are atomic."""
        return self.aggregate("fanout", tenant_id, campaign_id)

    # webhooks -------------------------------------------------------------
    def webhook(self, tenant_id: str, webhook_id: str) -> str:
        return self.aggregate("webhook", tenant_id, webhook_id)

    def webhook_delivery(self, tenant_id: str, delivery_id: str) -> str:
        """The log of one source event's delivery to one endpoint."""
        return self.aggregate("whdelivery", tenant_id, delivery_id)

    # everything else ------------------------------------------------------
    def dead_letter(self, stream: str, consumer: str) -> str:
        return f"{self.prefix}.dlq.{stream}.{consumer}"

    def command(self, service: str, name: str) -> str:
        return f"{self.prefix}.cmd.{service}.{name}"

    def query(self, name: str) -> str:
        return f"{self.prefix}.qry.{name}"

    def clock(self) -> str:
        return f"{self.prefix}.ctl.clock"

    def live(self, tenant_id: str) -> str:
        """Ephemeral live updates (QR rotations, progress ticks) for WebSocket clients."""
        return f"{self.prefix}.live.{check_token(tenant_id, 'tenant')}"

    def all_of(self, kind: str) -> str:
        return f"{self.prefix}.{kind}.>"
