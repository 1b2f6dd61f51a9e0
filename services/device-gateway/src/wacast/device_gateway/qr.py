"""Linking prompts: QR codes rendered with segno and phone pairing codes.

They rotate every few seconds and mean nothing a minute later, so they are never events:
each is published on the tenant's live subject and kept in memory by the replica that
serves the device. `device.qr` queries reach any replica (queue group), which forwards
them to the partition's own subject, answered only by the replica holding the partition.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from datetime import datetime

import msgspec
import segno
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from wacast.contracts.base import Reply, encode
from wacast.contracts.devices import DEVICE_QR_QUERY, DeviceQr, DeviceQrQuery
from wacast.contracts.subjects import Topology, partition_of
from wacast.runtime.commands import problem, serve_query

log = logging.getLogger(__name__)

_query = msgspec.json.Decoder(DeviceQrQuery)


def render(code: str) -> tuple[str, str]:
    """(PNG in base64, SVG) of a QR holding `code`.

    One fixed mask pattern: choosing the best of eight costs five times the rendering, for
    codes that live 20 seconds on a screen (scanners read any mask)."""
    qr = segno.make(code, error="m", mask=0)
    png, svg = io.BytesIO(), io.BytesIO()
    qr.save(png, kind="png", scale=4, border=2)
    qr.save(svg, kind="svg", scale=4, border=2)
    return base64.b64encode(png.getvalue()).decode(), svg.getvalue().decode()


class QrBoard:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.current: dict[str, DeviceQr] = {}
        self._subs: dict[int, Subscription] = {}

    async def show(
        self, tenant_id: str, device_id: str, method: str, code: str, at: datetime
    ) -> None:
        png, svg = await asyncio.to_thread(render, code) if method == "qr" else ("", "")
        prompt = DeviceQr(
            tenant_id=tenant_id,
            device_id=device_id,
            method="qr" if method == "qr" else "code",
            code=code,
            at=at,
            png_base64=png,
            svg=svg,
        )
        self.current[device_id] = prompt
        await self.nc.publish(self.topology.live(tenant_id), encode(prompt))

    def clear(self, device_id: str) -> None:
        self.current.pop(device_id, None)

    def register(self, broker: NatsBroker) -> None:
        serve_query(
            broker, self.topology, DEVICE_QR_QUERY, DeviceQrQuery, self._forward,
            queue="devices", max_workers=16,
        )  # fmt: skip

    async def _forward(self, query: DeviceQrQuery) -> msgspec.Struct | Reply:
        subject = self._partition_subject(partition_of(query.device_id))
        try:
            reply = await self.nc.request(subject, encode(query), timeout=2.0)
        except (NoRespondersError, NatsTimeout):
            return problem("unavailable", "No gateway replica serves this device right now", 503)
        try:
            return msgspec.json.decode(reply.data, type=DeviceQr)
        except msgspec.ValidationError:
            return msgspec.json.decode(reply.data, type=Reply)

    async def serve(self, partition: int) -> None:
        if partition not in self._subs:
            subject = self._partition_subject(partition)
            self._subs[partition] = await self.nc.subscribe(subject, cb=self._answer)

    async def unserve(self, partition: int) -> None:
        sub = self._subs.pop(partition, None)
        if sub is not None:
            await sub.unsubscribe()
        for device_id in [d for d in self.current if partition_of(d) == partition]:
            self.clear(device_id)

    async def _answer(self, msg: Msg) -> None:
        try:
            query = _query.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await msg.respond(encode(problem("invalid_request", "Bad query", 422, str(exc))))
            return
        prompt = self.current.get(query.device_id)
        if prompt is None or prompt.tenant_id != query.tenant_id:
            answer: msgspec.Struct = problem(
                "no_qr", "The device is not waiting to be linked", 404, query.device_id
            )
        else:
            answer = prompt
        await msg.respond(encode(answer))

    def _partition_subject(self, partition: int) -> str:
        return self.topology.query(f"{DEVICE_QR_QUERY}.p{partition}")
