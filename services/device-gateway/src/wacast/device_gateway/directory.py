"""Every device's state, folded in memory from the DEVICES stream, on every replica.

Commands are served by any replica, while a device's session is driven by the replica that
holds its partition: that replica learns what the commands decided (pairing started,
logout, deletion) from the events. The directory replays the stream at start-up, then
follows it and tells its listeners about each new event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client

from wacast.contracts.devices import DeviceEvent
from wacast.contracts.streams import DEVICES, codec
from wacast.contracts.subjects import Topology, partition_of
from wacast.device_gateway.domain.device import Device, evolve
from wacast.runtime.reader import SubjectReader, position

log = logging.getLogger(__name__)

Listener = Callable[[Device, DeviceEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Known:
    state: Device
    seq: int
    """Stream sequence of the device's last event: appends expect it."""


class Directory:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.known: dict[str, Known] = {}
        self.by_partition: dict[int, set[str]] = {}
        self.listeners: list[Listener] = []
        self.ready = asyncio.Event()
        self._decoder = codec(DEVICES)

    def get(self, device_id: str) -> Known | None:
        return self.known.get(device_id)

    def state(self, device_id: str) -> Device | None:
        found = self.known.get(device_id)
        return None if found is None else found.state

    def in_partition(self, partition: int) -> list[Device]:
        ids = self.by_partition.get(partition, set())
        return [self.known[i].state for i in sorted(ids) if i in self.known]

    async def run(self) -> None:
        stream = DEVICES.name(self.topology)
        async with SubjectReader(self.nc, stream, self.topology.all_of("device")) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    self._fold(position(msg), msg.data)
            self.ready.set()
            log.info("device directory ready", extra={"devices": len(self.known)})
            async for batch in reader.follow():
                for msg in batch:
                    folded = self._fold(position(msg), msg.data)
                    if folded is not None:
                        await self._tell(*folded)

    def _fold(self, seq: int, data: bytes) -> tuple[Device, DeviceEvent] | None:
        try:
            event = self._decoder.decode(data)
        except Exception as exc:
            log.error("undecodable device event at %s: %s", seq, exc)
            return None
        if not isinstance(event, DeviceEvent.__args__):
            return None
        device_id = event.device_id
        previous = self.known.get(device_id)
        if previous is not None and previous.state.tenant_id not in ("", event.tenant_id):
            log.error("device %s appears under two tenants; keeping the first", device_id)
            return None
        state = evolve(previous.state if previous else Device(device_id), event)
        self.known[device_id] = Known(state, seq)
        self.by_partition.setdefault(partition_of(device_id), set()).add(device_id)
        return state, event

    async def _tell(self, state: Device, event: DeviceEvent) -> None:
        for listener in self.listeners:
            try:
                await listener(state, event)
            except Exception:
                log.exception("device listener failed on %s", type(event).__name__)
