"""Which driver serves a device: `sim` (the wa-simulator) or `whatsapp` (neonize).

One instance of each kind per process, created and started on first use. The neonize
driver is imported lazily (importing neonize is heavy and configures logging), and only
where its module is installed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from collections.abc import Callable

from wacast.device_gateway.drivers.base import Driver, DriverListener

log = logging.getLogger(__name__)

NEONIZE_MODULE = "wacast.device_gateway.drivers.neonize_driver"

Factory = Callable[[], Driver]


class DriverUnavailable(Exception):
    pass


def sim_factory(url: str) -> Factory:
    def make() -> Driver:
        from wacast.device_gateway.drivers.sim import SimDriver

        return SimDriver(url)

    return make


def neonize_factory(sessions: str) -> Factory | None:
    """The neonize driver's factory (working session files under `sessions`), or None
    while its module is not there."""
    if importlib.util.find_spec(NEONIZE_MODULE) is None:
        return None

    def make() -> Driver:
        module = importlib.import_module(NEONIZE_MODULE)
        driver: Driver = module.NeonizeDriver(module.NeonizeOptions(sessions=sessions))
        return driver

    return make


class Drivers:
    def __init__(self, factories: dict[str, Factory]) -> None:
        self.factories = factories
        self.started: dict[str, Driver] = {}
        self.listener: DriverListener | None = None
        self._lock = asyncio.Lock()

    def problem(self, kind: str) -> str | None:
        """Why devices of driver `kind` cannot be served by this gateway (None: they can)."""
        if kind in self.factories:
            return None
        if kind == "whatsapp":
            return "the WhatsApp (neonize) driver is not installed in this gateway"
        return f"unknown driver {kind!r}"

    async def get(self, kind: str) -> Driver:
        driver = self.started.get(kind)
        if driver is not None:
            return driver
        async with self._lock:
            driver = self.started.get(kind)
            if driver is not None:
                return driver
            why = self.problem(kind)
            if why is not None:
                raise DriverUnavailable(why)
            assert self.listener is not None, "set a listener before using drivers"
            driver = self.factories[kind]()
            await driver.start(self.listener)
            self.started[kind] = driver
            log.info("driver started", extra={"driver": kind})
            return driver

    async def close(self) -> None:
        for kind, driver in self.started.items():
            try:
                await driver.close()
            except Exception:
                log.exception("closing driver %s failed", kind)
        self.started.clear()


def default_drivers(sim_url: str, whatsapp_sessions: str) -> Drivers:
    """`sim` always; `whatsapp` where the neonize driver is installed."""
    factories = {"sim": sim_factory(sim_url)}
    neonize = neonize_factory(whatsapp_sessions)
    if neonize is not None:
        factories["whatsapp"] = neonize
    return Drivers(factories)
