"""Scale of the wa-simulator: N devices linked and connected through ONE SimDriver socket.

Starts the simulator as its own process (`python -m wacast.wa_simulator`, bench profile,
automatic linking after 50 ms) on a free port, then, from this process, through one
SimDriver:

1. link: `pair_qr` for N new devices at once; time until every device reported
   `connected` (each went qr -> paired -> session -> connected);
2. reconnect: a new SimDriver (a gateway restart) connects all N from their sessions;
   time until every device is connected again;
3. send: one text per device, all at once; sends per second through the simulator and
   the time until every delivery receipt came back.

Prints one JSON object with the times and the simulator's RSS (psutil) before and after,
and saves it to bench/results/sim_scale-<timestamp>.json unless --no-save.

    .venv/bin/python -m bench.sim_scale [--devices N] [--out FILE] [--no-save]
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped, unused-ignore]

from bench.output import options, print_and_save
from wacast.device_gateway.drivers.base import Inbound, Outbound
from wacast.device_gateway.drivers.sim import SimDriver
from wacast.runtime.embedded import free_port


class Counter:
    """A DriverListener that counts what the benchmark waits for."""

    def __init__(self) -> None:
        self.sessions: dict[str, bytes] = {}
        self.connected: set[str] = set()
        self.delivered = 0
        self._target = 0
        self._what = ""
        self._done = asyncio.Event()

    def expect(self, what: str, count: int) -> asyncio.Event:
        self._what, self._target = what, count
        self._done = asyncio.Event()
        self._check()
        return self._done

    def _check(self) -> None:
        value = len(self.connected) if self._what == "connected" else self.delivered
        if self._what and value >= self._target:
            self._done.set()

    async def on_qr(self, device_id: str, code: str) -> None:
        pass

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None:
        pass

    async def on_session(self, device_id: str, session: bytes) -> None:
        self.sessions[device_id] = session

    async def on_connected(self, device_id: str) -> None:
        self.connected.add(device_id)
        self._check()

    async def on_disconnected(self, device_id: str, reason: str) -> None:
        self.connected.discard(device_id)

    async def on_logged_out(self, device_id: str, reason: str) -> None:
        pass

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        pass

    async def on_receipt(self, device_id: str, wa_message_id: str, kind: str, at: datetime) -> None:
        if kind == "delivered":
            self.delivered += 1
            self._check()

    async def on_inbound(self, device_id: str, message: Inbound) -> None:
        pass


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WACAST_SIM_PORT": str(port),
        "WACAST_SIM_PROFILE": "bench",
        "WACAST_SIM_PAIR_DELAY": "0.05",
        "WACAST_SIM_SEED": "1",
        "WACAST_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "wacast.wa_simulator"], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the simulator did not become healthy in 30 s")


async def gather_in_chunks(calls: list[Any], chunk: int = 2_000) -> None:
    for start in range(0, len(calls), chunk):
        await asyncio.gather(*calls[start : start + chunk])


async def measure(devices: int, url: str, sim: psutil.Process) -> dict[str, Any]:
    rss_idle = sim.memory_info().rss
    ids = [f"bench-{n:05d}" for n in range(devices)]

    counter = Counter()
    driver = SimDriver(url, request_timeout=120, send_timeout=120)
    await driver.start(counter)
    all_connected = counter.expect("connected", devices)
    started = time.perf_counter()
    await gather_in_chunks([driver.pair_qr(device_id) for device_id in ids])
    await asyncio.wait_for(all_connected.wait(), 300)
    link_all_s = time.perf_counter() - started
    rss_linked = sim.memory_info().rss
    await driver.close()

    counter2 = Counter()
    driver2 = SimDriver(url, request_timeout=120, send_timeout=120)
    await driver2.start(counter2)
    all_connected = counter2.expect("connected", devices)
    started = time.perf_counter()
    await gather_in_chunks(
        [driver2.connect(device_id, counter.sessions[device_id]) for device_id in ids]
    )
    await asyncio.wait_for(all_connected.wait(), 300)
    connect_all_s = time.perf_counter() - started
    rss_connected = sim.memory_info().rss

    all_delivered = counter2.expect("delivered", devices)
    started = time.perf_counter()
    await gather_in_chunks(
        [
            driver2.send(
                device_id,
                Outbound(to=f"+49151{n:07d}1", text=f"hello {n}", origin_message_id=f"m-{n}"),
            )
            for n, device_id in enumerate(ids)
        ]
    )
    sends_s = time.perf_counter() - started
    await asyncio.wait_for(all_delivered.wait(), 300)
    delivered_s = time.perf_counter() - started
    rss_after_sends = sim.memory_info().rss
    await driver2.close()

    async with httpx.AsyncClient(base_url=url) as client:
        stats = (await client.get("/sim/v1/stats")).json()
    return {
        "devices": devices,
        "link_all_s": round(link_all_s, 3),
        "connect_all_s": round(connect_all_s, 3),
        "sends_per_s": round(devices / sends_s, 1),
        "send_and_deliver_all_s": round(delivered_s, 3),
        "sim_rss_idle_mb": round(rss_idle / 2**20, 1),
        "sim_rss_linked_mb": round(rss_linked / 2**20, 1),
        "sim_rss_connected_mb": round(rss_connected / 2**20, 1),
        "sim_rss_after_sends_mb": round(rss_after_sends / 2**20, 1),
        "sim_kb_per_device": round((rss_linked - rss_idle) / devices / 1024, 2),
        "bench_process_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "sim_received": stats["received"],
        "sim_duplicates": stats["duplicates"],
        "sim_devices_connected_after_close": stats["devices_connected"],
        "socket_connects": driver.socket_connects + driver2.socket_connects,
    }


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()

    port = free_port()
    proc = start_simulator(port)
    try:
        result = asyncio.run(
            measure(args.devices, f"http://127.0.0.1:{port}", psutil.Process(proc.pid))
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    result["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print_and_save("sim_scale", result, args)


if __name__ == "__main__":
    main()
