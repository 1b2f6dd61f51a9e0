"""The driver contract against `SimDriver` and a wa-simulator process of its own, which
links devices only when told to (the contract scans QR codes and enters pairing codes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import pytest

from wacast.device_gateway.drivers.base import Driver
from wacast.device_gateway.drivers.sim import SimDriver
from wacast.device_gateway.testing import Simulator

from .driver_contract import DriverContract, Harness, RecordingListener


@pytest.fixture(scope="module")
def manual_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    log = tmp_path_factory.mktemp("contract-sim") / "sim.log"
    simulator = Simulator(log, profile="bench", pair_delay=0).start()
    yield simulator
    simulator.stop()


class SimController:
    """The contract's `Network`, played through the simulator's control API."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def complete_link(self, device_id: str, code: str | None = None) -> None:
        if code is None:
            await self.sim.post(f"/sim/v1/devices/{device_id}/scan")
        else:
            await self.sim.post(f"/sim/v1/devices/{device_id}/enter-code", {"code": code})

    async def drop(self, device_id: str) -> None:
        await self.sim.post(f"/sim/v1/devices/{device_id}/drop")

    async def logout_remotely(self, device_id: str) -> None:
        await self.sim.post(f"/sim/v1/devices/{device_id}/logout")

    async def ban(self, device_id: str, seconds: float) -> None:
        await self.sim.post(f"/sim/v1/devices/{device_id}/ban", {"seconds": seconds})

    async def mark_absent(self, phone: str) -> None:
        await self.sim.post(f"/sim/v1/numbers/{quote(phone, safe='')}/absent")

    async def deliver(self, device_id: str, wa_message_id: str) -> None:
        """The bench profile delivers by itself, 10 ms after the send."""

    async def inbound(self, sender: str, to: str, text: str) -> None:
        await self.sim.post("/sim/v1/inbound", {"from": sender, "to": to, "text": text})


class TestSimDriverContract(DriverContract):
    @pytest.fixture
    async def harness(self, manual_sim: Simulator) -> AsyncIterator[Harness]:
        drivers: list[SimDriver] = []

        async def start() -> tuple[Driver, RecordingListener]:
            listener = RecordingListener()
            driver = SimDriver(manual_sim.url)
            await driver.start(listener)
            drivers.append(driver)
            return driver, listener

        driver, listener = await start()
        yield Harness(driver, listener, SimController(manual_sim), start)
        for started in drivers:
            await started.close()
