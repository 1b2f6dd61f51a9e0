"""`/api/v1/devices`: register, pair (QR or code), rename, limits, QR image, delete."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Annotated

import segno
from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UNSET

from wacast.api_gateway.auth import Principal
from wacast.api_gateway.domain.common import (
    Accepted,
    GatewayDep,
    IdempotencyDep,
    PageDep,
    PrincipalDep,
    ReadDep,
    accepted,
    build,
    existing_id,
    new_id,
    read_back,
    stream_key,
    with_write,
    write_headers,
)
from wacast.api_gateway.domain.devices.schemas import (
    DeviceCreate,
    DeviceResult,
    DeviceUpdate,
    Pairing,
    PairingCreate,
    PairingPrompt,
)
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.problems import ApiProblem, responses
from wacast.contracts import queries as q
from wacast.contracts.base import Reply
from wacast.contracts.commands import (
    CancelPairing,
    DeleteDevice,
    LogoutDevice,
    RegisterDevice,
    RenameDevice,
    SetDeviceLimits,
    StartPairing,
)
from wacast.contracts.devices import DEVICE_QR_QUERY, DeviceQr, DeviceQrQuery

STREAM = "DEVICES"
CODE_WAIT_SECONDS = 5.0
NOT_PAIRING = "the device is not pairing right now (start pairing first)"
WRITE = responses(404, 409, 503, 504)


async def device_after(
    gw: Gateway, who: Principal, device_id: str, reply: Reply
) -> q.Device | None:
    return await read_back(
        gw,
        q.DEVICE,
        q.GetOne(tenant_id=who.tenant_id, id=device_id, after_seq=reply.seq, after_stream=STREAM),
        q.Device,
    )


class DeviceController(Controller):
    path = "/devices"
    tags = ["devices"]

    @post("/", status_code=201, responses=WRITE, summary="Register a device")
    async def create(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, data: JSONBody[DeviceCreate]
    ) -> Response[DeviceResult]:
        """A device slot to pair with a WhatsApp account; it sends nothing until connected."""
        device_id = new_id("dev", who, idem, "/devices")
        reply = await gw.send(
            build(
                RegisterDevice, who, idem, name=data.name, driver=data.driver, device_id=device_id
            )
        )
        device_id = reply.id or device_id
        found = await device_after(gw, who, device_id, reply)
        if found is None:
            now = gw.clock.now()
            found = q.Device(
                id=device_id,
                name=data.name,
                driver=data.driver,
                status="unpaired",
                created_at=now,
                updated_at=now,
            )
        stream = stream_key(gw, reply, STREAM)
        return Response(
            with_write(found, DeviceResult, reply, stream),
            status_code=201,
            headers={**write_headers(reply, stream), "Location": f"/api/v1/devices/{device_id}"},
        )

    @get("/", responses=responses(503, 504), summary="List devices")
    async def list_devices(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        page: PageDep,
        read: ReadDep,
        status: FromQuery[
            Annotated[q.DeviceStatus | None, QueryParameter(description="Only this status")]
        ] = None,
    ) -> q.DevicePage:
        """The device board: status, phone, last seen, ban, leads and sends today."""
        return await gw.ask(
            q.DEVICES,
            q.ListDevices(
                tenant_id=who.tenant_id,
                status=status,
                cursor=page.cursor,
                limit=page.limit,
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.DevicePage,
        )

    @get("/{device_id:str}", responses=responses(404, 503, 504), summary="Get a device")
    async def get_device(
        self, gw: GatewayDep, who: PrincipalDep, device_id: FromPath[str], read: ReadDep
    ) -> q.Device:
        return await gw.ask(
            q.DEVICE,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(device_id, "device"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.Device,
        )

    @patch("/{device_id:str}", responses=WRITE, summary="Rename a device or set its limits")
    async def update(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        device_id: FromPath[str],
        data: JSONBody[DeviceUpdate],
    ) -> Response[DeviceResult]:
        device_id = existing_id(device_id, "device")
        replies: list[Reply] = []
        if data.name is not UNSET:
            replies.append(
                await gw.send(build(RenameDevice, who, device_id=device_id, name=data.name))
            )
        if data.daily_cap is not UNSET or data.warmup is not UNSET:
            current = await gw.ask(
                q.DEVICE, q.GetOne(tenant_id=who.tenant_id, id=device_id), q.Device
            )
            limits = build(
                SetDeviceLimits,
                who,
                device_id=device_id,
                daily_cap=current.daily_cap if data.daily_cap is UNSET else data.daily_cap,
                warmup=current.warmup if data.warmup is UNSET else data.warmup,
            )
            replies.append(await gw.send(limits))
        if not replies:
            raise ApiProblem(422, detail="give at least one of name, daily_cap, warmup")
        reply = replies[-1]
        found = await device_after(gw, who, device_id, reply)
        if found is None:
            found = await gw.ask(
                q.DEVICE, q.GetOne(tenant_id=who.tenant_id, id=device_id), q.Device
            )
        stream = stream_key(gw, reply, STREAM)
        return Response(
            with_write(found, DeviceResult, reply, stream), headers=write_headers(reply, stream)
        )

    @post("/{device_id:str}/pair", status_code=202, responses=WRITE, summary="Start pairing")
    async def pair(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        idem: IdempotencyDep,
        device_id: FromPath[str],
        data: JSONBody[PairingCreate],
    ) -> Response[Pairing]:
        """By QR (scan the code from `/qr` or the live socket) or by a code typed on the
        phone."""
        device_id = existing_id(device_id, "device")
        reply = await gw.send(
            build(
                StartPairing, who, idem, device_id=device_id, method=data.method, phone=data.phone
            )
        )
        code = reply.data.get("code")
        if not code and data.method == "code":
            code = await code_prompt(gw, who, device_id)
        stream = stream_key(gw, reply, STREAM)
        return Response(
            Pairing(
                device_id=device_id,
                method=data.method,
                code=str(code) if code else None,
                seq=reply.seq,
                stream=stream,
            ),
            status_code=202,
            headers=write_headers(reply, stream),
        )

    @post(
        "/{device_id:str}/pair/cancel", status_code=202, responses=WRITE, summary="Cancel pairing"
    )
    async def cancel_pairing(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, device_id: FromPath[str]
    ) -> Response[Accepted]:
        device_id = existing_id(device_id, "device")
        reply = await gw.send(build(CancelPairing, who, idem, device_id=device_id))
        return accepted(gw, reply, device_id, STREAM)

    @post("/{device_id:str}/logout", status_code=202, responses=WRITE, summary="Log out")
    async def logout(
        self, gw: GatewayDep, who: PrincipalDep, idem: IdempotencyDep, device_id: FromPath[str]
    ) -> Response[Accepted]:
        """Unlink the WhatsApp session; the device stays, ready to pair again."""
        device_id = existing_id(device_id, "device")
        reply = await gw.send(build(LogoutDevice, who, idem, device_id=device_id))
        return accepted(gw, reply, device_id, STREAM)

    @get(
        "/{device_id:str}/qr",
        media_type="image/png",
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type="image/png",
                description="QR code",
                generate_examples=False,
            ),
            **responses(404, 503, 504),
        },
        summary="The pairing QR code (PNG)",
    )
    async def qr(
        self, gw: GatewayDep, who: PrincipalDep, device_id: FromPath[str]
    ) -> Response[bytes]:
        """The current QR code of a device pairing by QR; it rotates about every 20 s."""
        device_id = existing_id(device_id, "device")
        prompt = await current_prompt(gw, who, device_id)
        if prompt.method != "qr":
            raise ApiProblem(404, "no_prompt", "Not pairing by QR", NOT_PAIRING)
        image = io.BytesIO()
        segno.make(prompt.code, error="m").save(image, kind="png", scale=8, border=2)
        return Response(
            image.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"}
        )

    @get(
        "/{device_id:str}/pairing",
        responses=responses(404, 503, 504),
        summary="The current pairing prompt",
    )
    async def pairing(
        self, gw: GatewayDep, who: PrincipalDep, device_id: FromPath[str]
    ) -> PairingPrompt:
        """The QR content or phone code of a device that is pairing (404 when it is not)."""
        prompt = await current_prompt(gw, who, existing_id(device_id, "device"))
        return PairingPrompt(
            device_id=prompt.device_id, method=prompt.method, code=prompt.code, at=prompt.at
        )

    @get(
        "/{device_id:str}/deletion-impact",
        responses=responses(404, 503, 504),
        summary="What deleting the device removes",
    )
    async def deletion_impact(
        self, gw: GatewayDep, who: PrincipalDep, device_id: FromPath[str], read: ReadDep
    ) -> q.DeletionImpact:
        """How many leads and messages go with the device (ask before deleting)."""
        return await gw.ask(
            q.DEVICE_IMPACT,
            q.GetOne(
                tenant_id=who.tenant_id,
                id=existing_id(device_id, "device"),
                after_seq=read.after_seq,
                after_stream=read.after_stream,
            ),
            q.DeletionImpact,
        )

    @delete("/{device_id:str}", status_code=202, responses=WRITE, summary="Delete a device")
    async def delete_device(
        self,
        gw: GatewayDep,
        who: PrincipalDep,
        device_id: FromPath[str],
        reason: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Response[Accepted]:
        """Logs the session out and removes the device's leads and messages everywhere."""
        device_id = existing_id(device_id, "device")
        reply = await gw.send(build(DeleteDevice, who, device_id=device_id, reason=reason))
        return accepted(gw, reply, device_id, STREAM)


async def current_prompt(gw: Gateway, who: Principal, device_id: str) -> DeviceQr:
    """The linking prompt as last seen live, else as the device-gateway has it now."""
    seen = gw.live.current_prompt(who.tenant_id, device_id)
    if seen is not None:
        return seen
    try:
        return await gw.ask(
            DEVICE_QR_QUERY,
            DeviceQrQuery(tenant_id=who.tenant_id, device_id=device_id),
            DeviceQr,
        )
    except ApiProblem as problem:
        if problem.status in (404, 409, 422):
            raise ApiProblem(404, "no_prompt", "Not pairing", NOT_PAIRING) from None
        raise


async def code_prompt(gw: Gateway, who: Principal, device_id: str) -> str | None:
    """The pairing code, which the gateway shows moments after pairing by code started."""
    deadline = gw.clock.now() + timedelta(seconds=CODE_WAIT_SECONDS)
    while gw.clock.now() < deadline:
        seen = gw.live.current_prompt(who.tenant_id, device_id)
        if seen is not None and seen.method == "code":
            return seen.code
        await asyncio.sleep(0.05)
    return None
