"""The device-gateway at scale: N simulated devices on ONE gateway process.

Starts nats-server (embedded, `sync_interval: always`), the wa-simulator (bench profile,
automatic linking) and one gateway (`python -m wacast.device_gateway`), each its own
process, then:

1. link: registers N `sim` devices and starts linking each by phone code (the events the
   command handler appends, in atomic batches); time until the simulator sees all N
   connected through the gateway (which asked for the codes, stored N sessions, recorded
   N paired and connected devices);
2. memory: the gateway's RSS (psutil) before any device and with all N connected;
3. restart: SIGTERM, a new gateway process; time from its start until all N are connected
   again (sessions from the object store, partitions rebuilt);
4. pacing: M devices send K messages each with short random gaps; the share of gaps,
   measured by the simulator, that fall within [min, max];
5. throughput: every device sends B messages with no gap; sends per second through the
   gateway, by the simulator's clock (first to last send) and by the wall clock;
6. commands: 1,000 RenameDevice commands, 64 at a time; commands answered per second.

Prints one JSON object; saves it under bench/results unless --no-save.

    .venv/bin/python -m bench.gateway [--devices N] [--no-save] [--out FILE]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import psutil  # type: ignore[import-untyped, unused-ignore]
from nats.aio.client import Client

from bench.machine import load_average, machine
from bench.output import options, print_and_save
from bench.seeding import append_in_batches, linking
from bench.waiting import until
from wacast.contracts import messages as m
from wacast.contracts.base import Command
from wacast.contracts.commands import RenameDevice
from wacast.contracts.streams import SESSIONS_BUCKET
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MessageContent, Pacing
from wacast.device_gateway.testing import GatewayProcess, Simulator
from wacast.runtime.commands import Requester
from wacast.runtime.embedded import NatsPlan, free_port, stop
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.provisioning import ensure_streams

TENANT = "bench"
AIMS = {"rss_per_device_kb": 40.0, "reconnect_all_seconds": 30.0, "pacing_accuracy": 1.0}


class Bench:
    def __init__(self, root: Path, nc: Client, nats_url: str, sim: Simulator, args: Any) -> None:
        self.root = root
        self.nc = nc
        self.sim = sim
        self.args = args
        self.topology = Topology(TENANT)
        self.store = EventStore(nc, self.topology, timeout=30)
        self.requester = Requester(nc, self.topology, timeout=30)
        self.devices = [f"d{n:05d}" for n in range(args.devices)]
        self.settings = {
            "nats_url": nats_url,
            "namespace": self.topology.prefix,
            "sim_url": sim.url,
            "replica_id": "bench-gateway",
            "typing_max_seconds": 0.2,
            "log_level": "WARNING",
        }
        self.gateway: GatewayProcess | None = None
        self.commands_seconds = 0.0
        self.connected_seconds = 0.0

    def start_gateway(self, name: str) -> GatewayProcess:
        self.gateway = GatewayProcess(self.root / f"{name}.log", dict(self.settings)).start()
        return self.gateway

    def rss(self) -> int:
        assert self.gateway is not None
        return int(psutil.Process(self.gateway.pid).memory_info().rss)

    async def connected(self) -> int:
        return int((await self.sim.stats())["devices_connected"])

    async def link(self) -> float:
        """Register every device and start linking it by phone code, appending the events
        the command handler would (atomic batches: the commands' own rate is measured on its
        own), then wait until the simulator sees every device connected."""
        now = datetime.now(UTC)
        started = time.monotonic()
        await append_in_batches(self.store, linking(self.topology, TENANT, self.devices, now))
        self.commands_seconds = time.monotonic() - started
        await until(self._all_connected, self.args.timeout, "all devices linked")
        self.connected_seconds = time.monotonic() - started
        await until(self._sessions_stored, 60, "every session stored")
        return time.monotonic() - started

    async def command_rate(self, count: int) -> float:
        """Commands per second answered by the gateway (renames, 64 at a time)."""
        gate = asyncio.Semaphore(64)

        async def one(n: int) -> None:
            device_id = self.devices[n % len(self.devices)]
            async with gate:
                await self.send(RenameDevice(tenant_id=TENANT, device_id=device_id, name=f"r{n}"))

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.monotonic() - started)

    async def send(self, command: Command) -> None:
        """Send a command; an overloaded bus gets a few more tries (idempotency keys make a
        retry answer with the first reply)."""
        for attempt in range(10):
            reply = await self.requester.send(command)
            if reply.ok:
                return
            if reply.problem is None or reply.problem.status < 500:
                raise RuntimeError(f"{command}: {reply.problem}")
            await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"{command}: {reply.problem}")

    async def _all_connected(self) -> bool:
        return await self.connected() >= len(self.devices)

    async def _sessions_stored(self) -> bool:
        bucket = self.topology.bucket(SESSIONS_BUCKET)
        info = await self.nc.jetstream().stream_info(
            f"OBJ_{bucket}", subjects_filter=f"$O.{bucket}.M.>"
        )
        return len(info.state.subjects or {}) >= len(self.devices)

    async def restart(self) -> dict[str, float]:
        assert self.gateway is not None
        started = time.monotonic()
        self.gateway.stop()
        stopped = time.monotonic() - started
        await until(self._none_connected, 60, "sessions gone with the old gateway")
        started = time.monotonic()
        self.start_gateway("gateway-2")
        await until(self._all_connected, self.args.timeout, "all devices reconnected")
        return {
            "shutdown_seconds": round(stopped, 2),
            "reconnect_all_seconds": round(time.monotonic() - started, 2),
        }

    async def _none_connected(self) -> bool:
        return await self.connected() == 0

    async def request(
        self, devices: list[str], per_device: int, pacing: Pacing, tag: str
    ) -> list[str]:
        now = datetime.now(UTC)
        items: list[Append] = []
        ids: list[str] = []
        for i in range(per_device):
            for n, device_id in enumerate(devices):
                message_id = f"{tag}-{device_id}-{i}"
                ids.append(message_id)
                request = m.MessageRequested(
                    tenant_id=TENANT, occurred_at=now, message_id=message_id, device_id=device_id,
                    lead_id=f"l{n}", origin="campaign", origin_id=tag,
                    to=f"+5511{n:05d}{i:04d}1", content=MessageContent(text=f"Hello {n}, #{i}"),
                    pacing=pacing,
                )  # fmt: skip
                items.append(
                    Append(request.subject(self.topology), request, f"req:{message_id}", 0)
                )
        for start in range(0, len(items), 1000):
            await self.store.append_batch(items[start : start + 1000])
        return ids

    async def received(self) -> int:
        return int((await self.sim.stats())["received"])

    async def ledger(self, after: int) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while True:
            page = await self.sim.get("/sim/v1/ledger", after=after, limit=100_000)
            entries.extend(page["entries"])
            if not page["entries"]:
                return entries
            after = page["next_after"]

    async def pacing(self) -> dict[str, Any]:
        devices = self.devices[: self.args.pace_devices]
        pacing = Pacing(min_seconds=self.args.gap_min, max_seconds=self.args.gap_max)
        before = await self.received()
        await self.request(devices, self.args.pace_messages, pacing, "pace")
        expected = before + len(devices) * self.args.pace_messages
        missed = await deadline_missed(
            until(lambda: self._received_at_least(expected), self.args.timeout, "paced sends")
        )
        by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in await self.ledger(before):
            by_device[entry["device_id"]].append(entry)
        gaps = [e["gap"] for entries in by_device.values() for e in entries[1:]]
        within = sum(1 for g in gaps if pacing.min_seconds <= g <= pacing.max_seconds)
        duplicates = sum(1 for entries in by_device.values() for e in entries if e["duplicate"])
        return {
            **missed,
            "devices": len(devices),
            "messages_per_device": self.args.pace_messages,
            "sends": sum(len(entries) for entries in by_device.values()),
            "gap_range_seconds": [pacing.min_seconds, pacing.max_seconds],
            "gaps": len(gaps),
            "gaps_within_range": within,
            "pacing_accuracy": round(within / len(gaps), 5) if gaps else None,
            "gap_min_seconds": round(min(gaps), 4) if gaps else None,
            "gap_max_seconds": round(max(gaps), 4) if gaps else None,
            "duplicates": duplicates,
        }

    async def _received_at_least(self, count: int) -> bool:
        return await self.received() >= count

    async def throughput(self) -> dict[str, Any]:
        before = await self.received()
        started = time.monotonic()
        devices = self.devices[: self.args.burst_devices]
        count = len(devices) * self.args.burst
        await self.request(devices, self.args.burst, Pacing(min_seconds=0, max_seconds=0), "burst")
        requested = time.monotonic() - started
        missed = await deadline_missed(
            until(lambda: self._received_at_least(before + count), self.args.timeout, "burst sends")
        )
        wall = time.monotonic() - started
        entries = await self.ledger(before)
        count = len(entries) if missed else count
        times = sorted(datetime.fromisoformat(e["at"]) for e in entries)
        span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
        return {
            **missed,
            "devices": len(devices),
            "messages": count,
            "requests_appended_seconds": round(requested, 2),
            "wall_seconds": round(wall, 2),
            "sends_per_second_wall": round(count / wall, 1),
            "sends_per_second_at_simulator": round(count / span, 1) if span else None,
            "duplicates": sum(1 for e in entries if e["duplicate"]),
        }


async def deadline_missed(wait: Awaitable[float]) -> dict[str, Any]:
    """{} when `wait` ended in time; else the error, and the phase reports on the sends that
    did arrive (a loaded machine still shows how accurate they were)."""
    try:
        await wait
    except TimeoutError as exc:
        return {"error": str(exc), "completed": False}
    return {}


async def phase(work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A phase's figures, or what stopped it (the run goes on with the next)."""
    try:
        return await work
    except TimeoutError as exc:
        return {"error": str(exc)}


async def measure(root: Path, nats_url: str, sim: Simulator, args: Any) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    try:
        bench = Bench(root, nc, nats_url, sim, args)
        await ensure_streams(nc, bench.topology)
        bench.start_gateway("gateway-1")
        await asyncio.sleep(3)
        rss_empty = bench.rss()
        link_seconds = await bench.link()
        await asyncio.sleep(2)
        rss_linked = bench.rss()
        restart = await bench.restart()
        await asyncio.sleep(2)
        rss_restarted = bench.rss()
        commands_per_second = await bench.command_rate(min(1000, len(bench.devices)))
        pacing = await phase(bench.pacing())
        throughput = await phase(bench.throughput())
        n = len(bench.devices)
        result: dict[str, Any] = {
            "devices": n,
            "link_seconds": round(link_seconds, 2),
            "link_events_appended_seconds": round(bench.commands_seconds, 2),
            "link_connected_seconds": round(bench.connected_seconds, 2),
            "rss_empty_mb": round(rss_empty / 2**20, 1),
            "rss_linked_mb": round(rss_linked / 2**20, 1),
            "rss_after_restart_mb": round(rss_restarted / 2**20, 1),
            "rss_per_device_kb": round(rss_linked / n / 1024, 2),
            "rss_added_per_device_kb": round((rss_linked - rss_empty) / n / 1024, 2),
            **restart,
            "commands_per_second": round(commands_per_second, 1),
            "pacing": pacing,
            "throughput": throughput,
        }
        measured = {
            "rss_per_device_kb": result["rss_per_device_kb"],
            "reconnect_all_seconds": result["reconnect_all_seconds"],
            "pacing_accuracy": pacing.get("pacing_accuracy"),
        }
        result["aims"] = AIMS
        result["meets_aims"] = {
            "rss_per_device_kb": measured["rss_per_device_kb"] <= AIMS["rss_per_device_kb"],
            "reconnect_all_seconds": measured["reconnect_all_seconds"]
            <= AIMS["reconnect_all_seconds"],
            "pacing_accuracy": (measured["pacing_accuracy"] or 0) >= AIMS["pacing_accuracy"],
        }
        return result
    finally:
        if bench.gateway is not None:
            bench.gateway.stop()
        await nc.close()


def run(args: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wacast-bench-gateway-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        plan = NatsPlan(root / "nats", free_port())
        nats_proc = plan.start(log=root / "nats.log")
        sim = Simulator(root / "sim.log", profile="bench", pair_delay=0.05)
        try:
            sim.start()
            started = time.perf_counter()
            result = asyncio.run(measure(root, plan.url, sim, args))
            result["seconds"] = round(time.perf_counter() - started, 1)
            result["machine"] = machine(load_average=load_average())
            return result
        finally:
            sim.stop()
            stop(nats_proc)


def main(argv: list[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument("--devices", type=int, default=10_000, help="simulated devices (10,000)")
    parser.add_argument("--pace-devices", type=int, default=200, help="devices in the pacing run")
    parser.add_argument("--pace-messages", type=int, default=5, help="messages per paced device")
    parser.add_argument("--gap-min", type=float, default=1.0, help="shortest gap, seconds")
    parser.add_argument("--gap-max", type=float, default=2.0, help="longest gap, seconds")
    parser.add_argument(
        "--burst-devices", type=int, default=0, help="devices sending with no gap (0: all)"
    )
    parser.add_argument("--burst", type=int, default=2, help="messages per device with no gap")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline of each phase")
    parser.add_argument("--keep", help="keep logs and data in this directory")
    args = parser.parse_args(argv)
    args.pace_devices = min(args.pace_devices, args.devices)
    args.burst_devices = min(args.burst_devices or args.devices, args.devices)
    print_and_save("gateway", run(args), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
