"""Fixtures of the gateway's integration tests: a simulator process, gateway settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from wacast.contracts.subjects import Topology
from wacast.device_gateway.settings import Settings
from wacast.device_gateway.testing import InProcessGateway, Simulator


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator for the session: tests use devices of their own and read per-device
    figures (its ledger and gap statistics are per device)."""
    simulator = Simulator(tmp_path_factory.mktemp("sim") / "sim.log").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def ids() -> Callable[[str], str]:
    """Device ids no other test uses (the simulator is shared)."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


Configure = Callable[..., Settings]


@pytest.fixture
def gateway_settings(nats_url: str, streams: Topology, sim: Simulator) -> Configure:
    """Settings of a fast-moving gateway in the test's namespace, overridable per test."""

    def configure(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "nats_url": nats_url,
            "namespace": streams.prefix,
            "sim_url": sim.url,
            "lease_ttl_seconds": 10.0,
            "lease_renew_seconds": 1.0,
            "health_interval_seconds": 1.0,
            "sweep_interval_seconds": 0.5,
            "reconnect_min_seconds": 0.1,
            "reconnect_max_seconds": 1.0,
            "typing_max_seconds": 0.05,
            "pacing_guard_seconds": 0.05,
            "log_format": "text",
        }
        values.update(overrides)
        return Settings(**values)

    return configure


@pytest.fixture
async def gateway(gateway_settings: Configure) -> AsyncIterator[InProcessGateway]:
    running = InProcessGateway(gateway_settings(replica_id="gw-a"))
    await running.start()
    yield running
    await running.stop()
