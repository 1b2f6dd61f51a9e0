"""`/api/v1/live`: a WebSocket per client with its tenant's live updates.

The hub gets updates from three places and hands each to the tenant's clients:
- core NATS `<prefix>.live.*`: linking prompts, QR or code (device-gateway), campaign and
  sequence progress (report-service); ephemeral by design;
- the DEVICES and CAMPAIGNS streams, followed from their end with ordered consumers: device
  status changes and campaign status changes as they are stored.
The hub never waits for a client: each has a bounded queue, and a client whose queue is
full is dropped (closed with 1013, try again later). Idle clients get heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import WebSocket
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import queries as q
from wacast.contracts.base import encode
from wacast.contracts.devices import DeviceQr
from wacast.contracts.streams import CAMPAIGNS, DEVICES, codec
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import Clock

log = logging.getLogger("wacast.api.live")

DEVICE_STATUS: dict[type[d.DeviceEvent], q.DeviceStatus] = {
    d.DeviceRegistered: "unpaired",
    d.DevicePairingStarted: "pairing",
    d.DeviceConnected: "connected",
    d.DeviceDisconnected: "disconnected",
    d.DeviceLoggedOut: "logged_out",
    d.DeviceBanned: "banned",
}
CAMPAIGN_STATUS: dict[type[c.CampaignEvent], q.CampaignStatus] = {
    c.CampaignCreated: "pending",
    c.CampaignTriggered: "triggered",
    c.CampaignPaused: "paused",
    c.CampaignResumed: "triggered",
    c.CampaignCancelled: "cancelled",
    c.CampaignCompleted: "completed",
    c.CampaignFinished: "finished",
    c.CampaignFailed: "failed",
}
PROMPT_TTL_SECONDS = 60.0
"""A linking prompt older than this means nothing any more (QR codes rotate every ~20 s)."""
live_decoder = msgspec.json.Decoder(q.LiveUpdate)


def device_update(event: d.DeviceEvent) -> q.LiveDevice:
    return q.LiveDevice(
        at=event.occurred_at,
        device_id=event.device_id,
        event=type(event).__name__,
        status=DEVICE_STATUS.get(type(event)),
        name=getattr(event, "name", ""),
        phone=getattr(event, "phone", ""),
        deleted=isinstance(event, d.DeviceDeleteRequested | d.DeviceDeleted),
    )


def campaign_update(event: c.CampaignEvent) -> q.LiveCampaign:
    return q.LiveCampaign(
        at=event.occurred_at,
        campaign_id=event.campaign_id,
        event=type(event).__name__,
        status=CAMPAIGN_STATUS.get(type(event)),
    )


@dataclass(eq=False)
class LiveClient:
    tenant_id: str
    queue: asyncio.Queue[bytes]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, update: bytes) -> None:
        try:
            self.queue.put_nowait(update)
        except asyncio.QueueFull:
            self.dropped.set()


class LiveHub:
    def __init__(self, nc: Client, topology: Topology, clock: Clock, queue_size: int) -> None:
        self.nc = nc
        self.topology = topology
        self.clock = clock
        self.queue_size = queue_size
        self.clients: dict[str, set[LiveClient]] = defaultdict(set)
        self.prompts: dict[tuple[str, str], DeviceQr] = {}
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        js = self.nc.jetstream()
        self._subs.append(
            await self.nc.subscribe(f"{self.topology.prefix}.live.*", cb=self._on_live)
        )
        for spec, kind in ((DEVICES, "device"), (CAMPAIGNS, "campaign")):
            self._subs.append(
                await js.subscribe(
                    self.topology.all_of(kind),
                    stream=spec.name(self.topology),
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW,
                    cb=self._on_device if spec is DEVICES else self._on_campaign,
                )
            )

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    def join(self, tenant_id: str) -> LiveClient:
        client = LiveClient(tenant_id, asyncio.Queue(self.queue_size))
        self.clients[tenant_id].add(client)
        return client

    def leave(self, client: LiveClient) -> None:
        self.clients[client.tenant_id].discard(client)

    def send(self, tenant_id: str, update: bytes) -> None:
        for client in list(self.clients.get(tenant_id, ())):
            client.offer(update)

    async def _on_live(self, msg: Msg) -> None:
        tenant_id = msg.subject.rsplit(".", 1)[-1]
        try:
            update = live_decoder.decode(msg.data)
        except msgspec.ValidationError:
            log.warning("ignoring a malformed live update on %s", msg.subject)
            return
        if isinstance(update, DeviceQr):
            self.prompts[(tenant_id, update.device_id)] = update
        self.send(tenant_id, msg.data)

    async def _on_device(self, msg: Msg) -> None:
        try:
            event = codec(DEVICES).decode(msg.data)
        except Exception:
            return
        assert isinstance(event, d.DeviceEventBase)
        if isinstance(event, d.DeviceConnected | d.DevicePaired | d.DevicePairingFailed):
            self.prompts.pop((event.tenant_id, event.device_id), None)
        self.send(event.tenant_id, encode(device_update(event)))  # type: ignore[arg-type]

    async def _on_campaign(self, msg: Msg) -> None:
        try:
            event = codec(CAMPAIGNS).decode(msg.data)
        except Exception:
            return
        assert isinstance(event, c.CampaignEventBase)
        self.send(event.tenant_id, encode(campaign_update(event)))  # type: ignore[arg-type]

    def current_prompt(self, tenant_id: str, device_id: str) -> DeviceQr | None:
        """The device's last linking prompt (QR or code) seen live, while still fresh."""
        found = self.prompts.get((tenant_id, device_id))
        if found is None or (self.clock.now() - found.at).total_seconds() > PROMPT_TTL_SECONDS:
            return None
        return found


async def serve_socket(
    socket: WebSocket[Any, Any, Any], hub: LiveHub, tenant_id: str, heartbeat: float
) -> None:
    """Forward the tenant's updates to one socket until it closes or falls behind.

    The socket joins the hub before the handshake completes, so every update after the
    client sees it open reaches it (queued until the loop below sends it)."""
    client = hub.join(tenant_id)
    reader: asyncio.Task[None] | None = None
    dropped: asyncio.Task[bool] | None = None
    try:
        await socket.accept()
        reader = asyncio.create_task(_drain(socket))
        dropped = asyncio.create_task(client.dropped.wait())
        while not reader.done():
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader, dropped}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            if dropped in done:
                getter.cancel()
                await socket.close(code=1013, reason="too slow: dropped")
                return
            if getter in done:
                await asyncio.wait_for(socket.send_text(getter.result().decode()), heartbeat)
            elif not done:
                getter.cancel()
                beat = q.LiveHeartbeat(at=hub.clock.now())
                await asyncio.wait_for(socket.send_text(encode(beat).decode()), heartbeat)
            else:
                getter.cancel()
    except Exception as exc:  # the client went away mid-send, or stalled
        log.info("live socket of %s closed: %r", tenant_id, exc)
    finally:
        hub.leave(client)
        for task in (reader, dropped):
            if task is not None:
                task.cancel()
        with contextlib.suppress(Exception):
            await socket.close()


async def _drain(socket: WebSocket[Any, Any, Any]) -> None:
    """Read (and ignore) what the client sends, so that a close is noticed."""
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
