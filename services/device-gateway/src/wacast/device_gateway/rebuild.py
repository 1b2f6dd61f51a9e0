"""Rebuilding a partition's lanes from their events when a replica takes the partition.

Each lane replays from its checkpoint's oldest open entry (or from its first event), so a
takeover reads what is open, not every send a device ever made. One reader streams the
partition's lane subjects from the earliest of those positions.
"""

from __future__ import annotations

import logging

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.subjects import Topology
from wacast.device_gateway.domain.lane import Lane
from wacast.runtime.reader import SubjectReader, position

log = logging.getLogger(__name__)


def _device_of(subject: str) -> tuple[str, str]:
    """(tenant, device) of `<prefix>.<kind>.<partition>.<tenant>.<device>`."""
    tokens = subject.split(".")
    return tokens[3], tokens[4]


async def rebuild_partition(nc: Client, topology: Topology, partition: int) -> list[Lane]:
    js = nc.jetstream()
    stream = MESSAGES.name(topology)
    decoder = codec(MESSAGES)
    info = await js.stream_info(stream, subjects_filter=topology.lanes_of_partition(partition))
    lanes: dict[str, Lane] = {}
    for subject in info.state.subjects or {}:
        tenant_id, device_id = _device_of(subject)
        lanes[device_id] = Lane(tenant_id, device_id)
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
                    lane.seq = event.lane_seq
                    lane.checkpointed_seq = event.lane_seq
                    lane.last_send_at = event.last_dispatch_at
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
