"""Taking a partition's lanes over: rebuild them from their events, then fence them.

Each lane replays from its checkpoint's oldest open entry (or from its first event), so a
takeover reads what is open, not every send a device ever made. One reader streams the
partition's lane subjects from the earliest of those positions. Then every open lane gets
`LaneFenced` (a former owner's next append is refused), and a message found handed to the
driver without an outcome fails as `unknown`: nobody knows whether it left, so it is never
sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.subjects import Topology
from wacast.device_gateway.domain.lane import Lane
from wacast.device_gateway.lanes import Lanes
from wacast.device_gateway.outcomes import Outcomes
from wacast.runtime.reader import SubjectReader, position

log = logging.getLogger(__name__)


def _device_of(subject: str) -> tuple[str, str]:
    """(tenant, device) of `<prefix>.<kind>.<partition>.<tenant>.<device>`."""
    tokens = subject.split(".")
    return tokens[3], tokens[4]


async def rebuild_partition(
    nc: Client, topology: Topology, partition: int, zone_of: Callable[[str], str]
) -> list[Lane]:
    """The partition's lanes as their events left them; `zone_of` names a tenant's
    timezone (hand-offs are counted per local day)."""
    js = nc.jetstream()
    stream = MESSAGES.name(topology)
    decoder = codec(MESSAGES)
    info = await js.stream_info(stream, subjects_filter=topology.lanes_of_partition(partition))
    lanes: dict[str, Lane] = {}
    for subject in info.state.subjects or {}:
        tenant_id, device_id = _device_of(subject)
        lanes[device_id] = Lane(tenant_id, device_id, zone=zone_of(tenant_id))
    if not lanes:
        return []
    starts: dict[str, int] = {}
    checkpoints = topology.all_of("lanecp").removesuffix(">") + f"{partition}.>"
    async with SubjectReader(nc, stream, checkpoints, last_per_subject=True) as reader:
        async for batch in reader.replay():
            for msg in batch:
                event = decoder.decode(msg.data)
                lane = lanes.get(getattr(event, "device_id", ""))
                if isinstance(event, m.LaneCheckpointed) and lane is not None:
                    lane.restore(event)
                    starts[lane.device_id] = event.open_from_seq
    for lane in lanes.values():
        if lane.device_id not in starts:
            starts[lane.device_id] = await _first_seq(nc, topology, lane)
    begin = min(starts.values())
    count = 0
    async with SubjectReader(
        nc, stream, topology.lanes_of_partition(partition), start_seq=begin
    ) as reader:
        async for batch in reader.replay():
            for msg in batch:
                seq = position(msg)
                _, device_id = _device_of(msg.subject)
                lane = lanes.get(device_id)
                if lane is None:
                    continue
                if seq < starts[device_id]:
                    lane.seq = max(lane.seq, seq)
                    continue
                lane.apply(seq, decoder.decode(msg.data))
                count += 1
    log.info(
        "partition lanes rebuilt",
        extra={"partition": partition, "lanes": len(lanes), "events": count},
    )
    return list(lanes.values())


async def _first_seq(nc: Client, topology: Topology, lane: Lane) -> int:
    subject = topology.lane(lane.tenant_id, lane.device_id)
    try:
        msg = await nc.jetstream().get_msg(
            MESSAGES.name(topology), seq=1, subject=subject, next=True, direct=True
        )
    except NotFoundError:
        return 1
    return int(msg.seq or 1)


async def fence(
    lanes: Lanes, outcomes: Outcomes, rebuilt: list[Lane], owner: str, epoch: int
) -> None:
    gate = asyncio.Semaphore(64)

    async def one(lane: Lane) -> None:
        async with gate:
            slot = lanes.slots[lane.device_id]
            now = lanes.clock.now()
            fenced = m.LaneFenced(
                tenant_id=lane.tenant_id, occurred_at=now, device_id=lane.device_id,
                owner=owner, epoch=epoch,
            )  # fmt: skip
            await lanes.append(slot, [fenced])
            flight = lane.flight
            if flight is not None:
                await outcomes.fail(
                    slot, flight.entry, "unknown", attempt=flight.attempt,
                    detail="handed to the driver before a takeover",
                )  # fmt: skip

    await asyncio.gather(*(one(lane) for lane in rebuilt if not lane.idle))
