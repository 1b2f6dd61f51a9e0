"""Gateways as processes: restarts, SIGKILL mid-send, a replica dying under its partitions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology, partition_of
from wacast.contracts.values import Pacing
from wacast.device_gateway.testing import (
    GatewayProcess,
    Simulator,
    eventually,
    lease_holders,
    outcomes,
    register_and_pair,
    request_send,
)
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"
Launch = Callable[..., GatewayProcess]


@pytest.fixture
def launch(nats_url: str, streams: Topology, sim: Simulator, tmp_path: Path) -> Iterator[Launch]:
    started: list[GatewayProcess] = []

    def start(replica: str, **overrides: Any) -> GatewayProcess:
        settings = {
            "nats_url": nats_url,
            "namespace": streams.prefix,
            "sim_url": sim.url,
            "replica_id": replica,
            "lease_ttl_seconds": 3.0,
            "lease_renew_seconds": 0.5,
            "health_interval_seconds": 1.0,
            "reconnect_min_seconds": 0.1,
            "reconnect_max_seconds": 1.0,
            "typing_max_seconds": 0.02,
            "log_level": "INFO",
            **overrides,
        }
        gateway = GatewayProcess(tmp_path / f"gateway-{replica}.log", settings).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


async def connected_at_sim(sim: Simulator, device_ids: list[str]) -> bool:
    found = [await sim.get(f"/sim/v1/devices/{d}") for d in device_ids]
    return all(d["connected"] for d in found)


async def test_a_restarted_gateway_resumes_every_session(
    nc: Client,
    store: EventStore,
    streams: Topology,
    sim: Simulator,
    launch: Launch,
    ids: Callable[[str], str],
) -> None:
    devices = [ids(f"resume-{i}") for i in range(5)]
    first = launch("gw-1")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, devices)

    first.kill()

    async def all_dropped() -> bool:
        found = [await sim.get(f"/sim/v1/devices/{d}") for d in devices]
        return not any(d["connected"] for d in found)

    await eventually(all_dropped, 5, "the simulator sees every session gone")
    launch("gw-2")
    await eventually(lambda: connected_at_sim(sim, devices), 15, "every session back")


async def test_no_message_is_sent_twice_when_the_gateway_is_killed_mid_send(
    nc: Client,
    store: EventStore,
    streams: Topology,
    sim: Simulator,
    launch: Launch,
    ids: Callable[[str], str],
) -> None:
    devices = [ids(f"kill-{i}") for i in range(3)]
    gateway = launch("gw-1")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, devices)
    pacing = Pacing(min_seconds=0.05, max_seconds=0.1)
    messages = [f"{d}-m{i}" for d in devices for i in range(20)]
    for mid in messages:
        device, _, n = mid.rpartition("-m")
        await request_send(store, T, device, mid, pacing=pacing, to=f"+551197{int(n) + 1:07d}")

    async def some_sent() -> bool:
        entries = [e for d in devices for e in await ledger(sim, d)]
        return len(entries) >= 15

    await eventually(some_sent, 15, "sends under way")
    gateway.kill()
    launch("gw-2")

    async def all_settled() -> bool:
        finals = [_final(await outcomes(store, T, mid)) for mid in messages]
        return all(final is not None for final in finals)

    try:
        await eventually(all_settled, 30, "every message has an outcome")
    except AssertionError:
        for d in devices:
            print(await sim.get(f"/sim/v1/devices/{d}"))
            for st in (await store.load(MESSAGES, streams.lane(T, d)))[-5:]:
                print("  ", st.seq, type(st.event).__name__, getattr(st.event, "message_id", ""))
        raise
    entries = [e for d in devices for e in await ledger(sim, d)]
    sent_at_sim = [e["origin_message_id"] for e in entries]
    assert len(sent_at_sim) == len(set(sent_at_sim)), "a message reached WhatsApp twice"
    assert not any(e["duplicate"] for e in entries)
    unknown: set[str] = set()
    sent: set[str] = set()
    for mid in messages:
        events = await outcomes(store, T, mid)
        finals = [e for e in events if isinstance(e, m.MessageSent | m.MessageFailed)]
        assert len(finals) == 1, (mid, events)
        if isinstance(finals[0], m.MessageSent):
            assert mid in sent_at_sim
            sent.add(mid)
        else:
            assert finals[0].reason == "unknown", finals[0]
            unknown.add(mid)
    assert set(sent_at_sim) - unknown <= sent
    assert len(unknown) <= len(devices), "at most one send per device was in flight"


async def test_a_partition_moves_to_the_other_replica_when_one_dies(
    nc: Client,
    store: EventStore,
    streams: Topology,
    sim: Simulator,
    launch: Launch,
    ids: Callable[[str], str],
) -> None:
    doomed = launch("gw-a")
    await eventually(lambda: _holds(nc, streams, "gw-a", 64), 10, "gw-a holds every partition")
    launch("gw-b")

    held_by_a: set[int] = set()

    async def shared() -> bool:
        # Both hold their fair share in one reading of the leases (a loaded machine can make
        # a replica miss a renewal and hand everything over for a while, even between two
        # readings).
        holders = await lease_holders(nc, streams)
        held_by_a.clear()
        held_by_a.update(p for p, r in holders.items() if r == "gw-a")
        return len(held_by_a) >= 32 and sum(r == "gw-b" for r in holders.values()) >= 32

    await eventually(shared, 15, "gw-a and gw-b share the partitions")
    device = next(
        ids(f"move-{i}") for i in range(10_000) if partition_of(ids(f"move-{i}")) in held_by_a
    )
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device])

    doomed.kill()

    await eventually(lambda: _holds(nc, streams, "gw-b", 64), 15, "gw-b takes every partition")
    await eventually(lambda: connected_at_sim(sim, [device]), 10, "the device back through gw-b")
    await request_send(
        store, T, device, f"{device}-after", pacing=Pacing(min_seconds=0, max_seconds=0)
    )

    async def sent() -> bool:
        return isinstance(_final(await outcomes(store, T, f"{device}-after")), m.MessageSent)

    await eventually(sent, 10, "a message sent by the surviving replica")


async def _holds(nc: Client, topology: Topology, replica: str, count: int) -> bool:
    holders = await lease_holders(nc, topology)
    return sum(1 for r in holders.values() if r == replica) >= count


def _final(events: list[m.MessageEvent]) -> m.MessageEvent | None:
    return next((e for e in events if isinstance(e, m.MessageSent | m.MessageFailed)), None)


async def ledger(sim: Simulator, device_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await sim.get("/sim/v1/ledger", device_id=device_id))["entries"]
    return found
