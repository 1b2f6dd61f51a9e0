"""Device commands: load the aggregate, decide, append with the expected sequence, reply.

Any replica answers (queue group); the replica that serves the device's partition learns
what was decided from the events and drives the session (see `sessions`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from wacast.contracts.base import Reply, encode
from wacast.contracts.commands import DeviceCommand, RegisterDevice
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import check_token
from wacast.device_gateway.device_store import DeviceStore, command_msg_id
from wacast.device_gateway.domain.device import Device, Refused, decide, evolve
from wacast.runtime.clock import Clock
from wacast.runtime.commands import problem
from wacast.runtime.eventstore import Conflict

log = logging.getLogger(__name__)

ATTEMPTS = 5


class CommandHandler:
    def __init__(
        self,
        devices: DeviceStore,
        clock: Clock,
        driver_problem: Callable[[str], str | None],
    ) -> None:
        self.devices = devices
        self.clock = clock
        self.driver_problem = driver_problem
        """Why a driver kind cannot be used here (None: it can)."""

    async def __call__(self, command: DeviceCommand) -> Reply:
        try:
            device_id = self._device_id(command)
            if isinstance(command, RegisterDevice):
                self._check_register(command, device_id)
        except Refused as refused:
            return _problem(refused)
        kind = type(command).__name__
        msg_id = command_msg_id(kind, command.tenant_id, command.idempotency_key, encode(command))
        for _ in range(ATTEMPTS):
            state, seq = await self.devices.load(command.tenant_id, device_id)
            try:
                events = decide(state, command, self.clock.now())
            except Refused as refused:
                return await self._refused_or_replayed(command, state, refused, msg_id)
            if not events:
                return _ok(state, seq)
            try:
                appended = await self.devices.append(state, seq, events, f"{msg_id}:{seq}")
            except Conflict:
                continue
            for event in events:
                state = evolve(state, event)
            return _ok(state, appended.seq, data=_details(command))
        return problem("busy", "The device changed too often; try again", 409)

    def _device_id(self, command: DeviceCommand) -> str:
        if isinstance(command, RegisterDevice) and not command.device_id:
            return _new_device_id(command.tenant_id, command.idempotency_key)
        device_id = getattr(command, "device_id", "")
        try:
            return check_token(device_id, "device id")
        except ValueError as exc:
            raise Refused(
                "invalid_device_id", "The device id is not valid", 422, str(exc)
            ) from None

    def _check_register(self, command: RegisterDevice, device_id: str) -> None:
        why = self.driver_problem(command.driver)
        if why is not None:
            raise Refused("driver_unavailable", "This driver is not available", 501, why)
        known = self.devices.directory.state(device_id)
        if known is not None and known.tenant_id != command.tenant_id:
            raise Refused("device_exists", "A device with this id exists", 409, device_id)

    async def _refused_or_replayed(
        self, command: DeviceCommand, state: Device, refused: Refused, msg_id: str
    ) -> Reply:
        """A retried command (same idempotency key) whose first try was appended gets the
        first reply, not a refusal of its own effect."""
        if command.idempotency_key:
            last_id, seq = await self.devices.last_msg_id(command.tenant_id, state.device_id)
            if last_id.startswith(f"{msg_id}:"):
                return _ok(state, seq, data=_details(command))
        return _problem(refused)


def _new_device_id(tenant_id: str, idempotency_key: str) -> str:
    if idempotency_key:
        return "d" + uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{idempotency_key}").hex
    return "d" + uuid.uuid4().hex


def _ok(state: Device, seq: int, data: dict[str, str] | None = None) -> Reply:
    body: dict[str, str] = {"status": state.status, "name": state.name, "driver": state.driver}
    body.update(data or {})
    return Reply(ok=True, seq=seq, stream=DEVICES.key, id=state.device_id, data=body)


def _details(command: DeviceCommand) -> dict[str, str]:
    method = getattr(command, "method", "")
    return {"method": method} if method else {}


def _problem(refused: Refused) -> Reply:
    return problem(refused.code, refused.title, refused.status, refused.detail)
