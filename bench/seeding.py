"""Setting a stage as its owners would: events appended in atomic batches, not measured."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from wacast.contracts.devices import DevicePairingStarted, DeviceRegistered
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadCreated, LeadPhoneClaimed
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import MAX_BATCH, Append, EventStore


async def append_in_batches(store: EventStore, items: Sequence[Append]) -> None:
    """In order, one atomic batch after the other (a batch holds one stream)."""
    for start in range(0, len(items), MAX_BATCH):
        await store.append_batch(items[start : start + MAX_BATCH])


def linking(
    topology: Topology, tenant: str, device_ids: Sequence[str], now: datetime
) -> list[Append]:
    """Each device registered and set linking by phone code, as the command handler would."""
    items: list[Append] = []
    for n, device_id in enumerate(device_ids):
        subject = topology.device(tenant, device_id)
        registered = DeviceRegistered(
            tenant_id=tenant, occurred_at=now, device_id=device_id, name=device_id,
            driver="sim",
        )  # fmt: skip
        pairing = DevicePairingStarted(
            tenant_id=tenant, occurred_at=now, device_id=device_id, method="code",
            phone=f"+55119{n:08d}",
        )  # fmt: skip
        items.append(Append(subject, registered, f"reg:{device_id}", 0))
        items.append(Append(subject, pairing, f"pair:{device_id}", None))
    return items


async def append_leads(
    store: EventStore,
    topology: Topology,
    tenant: str,
    count: int,
    device_ids: Sequence[str],
    now: datetime,
    phone: Callable[[int], str],
    **fields: Any,
) -> None:
    """`count` leads with their phone claims, spread over the devices, `fields` added to
    each `LeadCreated`: atomic batches of 1000 events, four in flight."""

    def batch(first: int) -> list[Append]:
        items: list[Append] = []
        for n in range(first, min(count, first + 500)):
            lead_id, number = f"l{n:07d}", phone(n)
            claim = LeadPhoneClaimed(
                tenant_id=tenant, occurred_at=now, lead_id=lead_id,
                phone_key=phone_key(tenant, number),
            )  # fmt: skip
            created = LeadCreated(
                tenant_id=tenant, occurred_at=now, lead_id=lead_id, phone=number,
                name=f"Lead {n}", device_id=device_ids[n % len(device_ids)], **fields,
            )  # fmt: skip
            items += [
                Append(e.subject(topology), e, f"seed.{lead_id}.{e.subject_kind}", 0)
                for e in (claim, created)
            ]
        return items

    starts = list(range(0, count, 500))
    for i in range(0, len(starts), 4):
        await asyncio.gather(*(store.append_batch(batch(s)) for s in starts[i : i + 4]))
