"""The whole embedded stack as a library: for e2e tests, benchmarks and chaos.

    async with running_stack(tmp / "var", env={"WACAST_CLOCK": "controlled"}) as s:
        httpx.get(f"{s.api_url}/devices", headers={"Authorization": f"Bearer {s.api_key}"})
        await s.kill("campaign-service")     # SIGKILL; the supervisor starts it again
        await s.restart("nats")              # stop, then start on the same port and data

It runs what `./dev up` runs (`devstack.Stack` specs under `supervisor.Supervisor`) on free
ports under one data folder, waits until every process is healthy, and stops everything on
the way out, also when the body fails. With `gateway_replicas=2` the device-gateway runs
twice (`device-gateway` and `device-gateway-2`), each with its own port and replica id.
Every child listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal as signals
import subprocess
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import nats
from nats.aio.client import Client

from wacast.cli.devstack import (
    DEV_TENANT,
    INFRA,
    SERVICES,
    Stack,
    ensure_database,
    http_ok,
)
from wacast.cli.supervisor import Process, ProcessSpec, RestartPolicy, State, Supervisor
from wacast.contracts import tenants as tn
from wacast.contracts.commands import CreateTenant, IssueApiKey
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import advance_clock
from wacast.runtime.commands import Requester
from wacast.runtime.embedded import free_port

GATEWAY = "device-gateway"
SERVICE_NAMES = tuple(component.name for component in SERVICES)
START_TIMEOUT = {"nats": 30.0, "postgres": 60.0, "services": 120.0}
"""Seconds each start-up step may take before `running_stack` gives up."""
TEST_POLICY = RestartPolicy(backoff=0.25, max_backoff=5.0, rapid=10.0, max_rapid_crashes=20)
"""Restarts for tests and chaos: quick, and patient with a service that crashes a few times
in a row while NATS or Postgres is down."""


class StackError(Exception):
    """The stack did not start (or come back) in time; the message ends with the log tails."""


@dataclass(frozen=True)
class Tenant:
    id: str
    key: str


def gateway_names(replicas: int) -> list[str]:
    """`device-gateway`, then `device-gateway-2`, `-3`, ... for further replicas."""
    return [GATEWAY if n == 1 else f"{GATEWAY}-{n}" for n in range(1, replicas + 1)]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any `WACAST_*` (the stack decides those), plus
    `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WACAST_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class RunningStack:
    """A started stack: where it listens, its processes, and ways to hurt them."""

    def __init__(
        self,
        stack: Stack,
        supervisor: Supervisor,
        env: Mapping[str, str],
        gateways: list[str],
        services: list[str],
    ) -> None:
        self.stack = stack
        self.supervisor = supervisor
        self.env = dict(env)
        self.gateways = gateways
        """Process names of the device-gateway replicas."""
        self.services = services
        """Process names of every service (gateway replicas included)."""
        self.topology = Topology(env.get("WACAST_NAMESPACE", "wacast"))
        self.started_in = 0.0
        """Seconds from the first start to all healthy."""

    # -- where things are ----------------------------------------------------------------

    @property
    def data(self) -> Path:
        return self.stack.data

    @property
    def ports(self) -> Mapping[str, int]:
        return self.stack.ports

    @property
    def api_url(self) -> str:
        """The public API's root: `http://127.0.0.1:<port>/api/v1`."""
        return f"http://127.0.0.1:{self.ports['api-gateway']}/api/v1"

    @property
    def base_url(self) -> str:
        """The api-gateway's root (dashboard, `/schema`, `/metrics`)."""
        return f"http://127.0.0.1:{self.ports['api-gateway']}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['wa-simulator']}"

    @property
    def nats_url(self) -> str:
        return self.stack.nats.url

    @property
    def database_url(self) -> str:
        return self.stack.database_url

    @property
    def api_key(self) -> str:
        """The dev tenant's API key."""
        return self.env["WACAST_DEV_API_KEY"]

    @property
    def tenant_id(self) -> str:
        """The dev tenant."""
        return self.env.get("WACAST_DEV_TENANT", DEV_TENANT)

    def log(self, name: str) -> Path:
        return self.stack.log(name)

    def process(self, name: str) -> Process:
        try:
            return self.supervisor.processes[name]
        except KeyError:
            known = ", ".join(self.supervisor.processes)
            raise KeyError(f"no process {name!r} in this stack (it has {known})") from None

    def pids(self) -> dict[str, int]:
        """Pid of each process that runs now."""
        return {
            name: p.pid
            for name, p in self.supervisor.processes.items()
            if p.alive and p.pid is not None
        }

    def restarts(self) -> dict[str, int]:
        """How often the supervisor has started each process again after it died."""
        return {name: p.restarts for name, p in self.supervisor.processes.items()}

    # -- hurting it ------------------------------------------------------------------------

    async def kill(
        self, name: str, signal: signals.Signals = signals.SIGKILL, timeout: float = 30.0
    ) -> int:
        """Send `signal` to one process and wait until it has exited (the supervisor then
        starts it again after its backoff); returns the pid that was hit."""
        process = self.process(name)
        deadline = time.monotonic() + timeout
        while not process.alive:  # being restarted after an earlier crash: wait for it
            if time.monotonic() > deadline or process.state is State.FAILED:
                raise StackError(f"{name} is not running (state {process.state.value})")
            await asyncio.sleep(0.05)
        pid = process.pid
        assert pid is not None
        os.kill(pid, signal)
        try:
            await asyncio.wait_for(process.exited.wait(), timeout)
        except TimeoutError:
            raise StackError(
                f"{name} (pid {pid}) did not exit {timeout}s after {signal.name}"
            ) from None
        return pid

    async def stop(self, name: str) -> None:
        """Stop one process the way `./dev up` stops it, without restarting it."""
        process = self.process(name)
        await self.supervisor.stop(process)

    async def start(self, name: str, timeout: float | None = None) -> None:
        """Start a stopped process again with the same spec (port, data, environment)."""
        process = self.process(name)
        if process.task is not None and not process.task.done():
            raise StackError(f"{name} runs already")
        self.supervisor.start(process.spec)
        await self.wait_healthy([name], timeout)

    async def restart(self, name: str, timeout: float | None = None) -> None:
        """Stop, then start on the same port and data (e.g. `nats`, `postgres`)."""
        await self.stop(name)
        await self.start(name, timeout)

    async def wait_healthy(
        self, names: Iterable[str] | None = None, timeout: float | None = None
    ) -> None:
        """Wait until the named processes (default: all) answer their health checks."""
        wanted = list(self.supervisor.processes) if names is None else list(names)
        if timeout is None:
            timeout = max(START_TIMEOUT.get(name, START_TIMEOUT["services"]) for name in wanted)
        deadline = time.monotonic() + timeout
        problem = await self.supervisor.wait_healthy(wanted, timeout)
        if problem is not None:
            raise StackError(self.explain(problem))
        services = [name for name in wanted if name in self.services]
        while not_ready := [name for name in services if not await self._ready(name)]:
            if time.monotonic() > deadline:
                raise StackError(self.explain(f"not ready after {timeout}s: {not_ready}"))
            await asyncio.sleep(0.1)

    async def _ready(self, name: str) -> bool:
        """`/readyz` answers 200: the service is connected to what it needs."""
        try:
            return await asyncio.wait_for(http_ok(self.ports[name], "/readyz")(), 3)
        except (OSError, TimeoutError, IndexError):
            return False

    def explain(self, problem: str, lines: int = 12) -> str:
        """`problem`, then the state and last log lines (shortened) of every process that is
        not healthy."""
        parts = [problem]
        for name, process in self.supervisor.processes.items():
            if process.state is not State.HEALTHY:
                error = f" ({process.error})" if process.error else ""
                parts.append(f"--- {name} is {process.state.value}{error}; {self.log(name)}:")
                parts.extend(line[:400] for line in tail(self.log(name), lines))
        parts.append(
            f"states: { {n: p.state.value for n, p in self.supervisor.processes.items()} }"
        )
        return "\n".join(parts)

    # -- talking to it ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def nats(self) -> AsyncIterator[Client]:
        """A NATS connection to the stack's server (closed on the way out)."""
        nc = await nats.connect(self.nats_url, name="wacast-stackrun", connect_timeout=5)
        try:
            yield nc
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def create_tenant(self, tenant_id: str, name: str = "") -> Tenant:
        """A new tenant and one API key for it, through the api-gateway's `tenants` commands
        (the public API has no call that makes tenants)."""
        key = tn.new_api_key()
        commands = [
            CreateTenant(tenant_id=tenant_id, name=name or tenant_id),
            IssueApiKey(
                tenant_id=tenant_id,
                key_id=tn.key_id_of(key),
                key_hash=tn.key_hash(key),
                name="test",
                prefix=tn.key_display_prefix(key),
            ),
        ]
        async with self.nats() as nc:
            requester = Requester(nc, self.topology)
            for command in commands:
                deadline = time.monotonic() + 30
                while True:
                    reply = await requester.send(command)
                    unavailable = reply.problem is not None and reply.problem.status == 503
                    if not unavailable or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)  # the api-gateway is (re)subscribing
                if not reply.ok:
                    raise StackError(f"{type(command).__name__} refused: {reply.problem}")
        return Tenant(tenant_id, key)

    async def advance_clock(self, by: timedelta) -> datetime:
        """Move the controlled clock (`WACAST_CLOCK=controlled`) of every process."""
        async with self.nats() as nc:
            return await advance_clock(nc, self.topology, by)


def tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _service_specs(
    stack: Stack, env: Mapping[str, str], wanted: list[str], replicas: int
) -> list[ProcessSpec]:
    """`Stack.service_specs`, limited to `wanted`, with the gateway run `replicas` times."""
    specs: list[ProcessSpec] = []
    for spec in stack.service_specs(env):
        if spec.name not in wanted:
            continue
        if spec.name != GATEWAY:
            specs.append(spec)
            continue
        assert spec.env is not None
        for n, name in enumerate(gateway_names(replicas), start=1):
            port = stack.ports[name]
            replica_env = dict(spec.env)
            replica_env["WACAST_GATEWAY_PORT"] = str(port)
            replica_env["WACAST_REPLICA_ID"] = f"gateway-{n}"
            replica_env.setdefault(
                "WACAST_WHATSAPP_SESSIONS", str(stack.data / "sessions" / f"gateway-{n}")
            )
            specs.append(
                dataclasses.replace(
                    spec,
                    name=name,
                    log=stack.log(name),
                    env=replica_env,
                    port=port,
                    health=http_ok(port),
                )
            )
    return specs


@contextlib.asynccontextmanager
async def running_stack(
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    gateway_replicas: int = 1,
    services: Iterable[str] | None = None,
    policy: RestartPolicy = TEST_POLICY,
    health_interval: float = 1.0,
) -> AsyncIterator[RunningStack]:
    """Start nats-server, Postgres and the services (all of them, or the names in `services`)
    on free ports with data under `data_dir`, wait until all are healthy, yield the running
    stack, and stop everything on the way out. `env` is added to the services' environment
    (`WACAST_*` variables of this process are not passed on)."""
    if gateway_replicas < 1:
        raise ValueError("gateway_replicas must be at least 1")
    wanted = list(SERVICE_NAMES if services is None else services)
    unknown = sorted(set(wanted) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(f"unknown services {unknown}; known: {', '.join(SERVICE_NAMES)}")
    names = [c.name for c in INFRA + SERVICES] + gateway_names(gateway_replicas)[1:]
    ports = {name: free_port() for name in names}
    stack = Stack(Path(data_dir), ports)
    user_env = base_env(env)
    service_env = stack.service_env(user_env)
    supervisor = Supervisor(policy=policy, health_interval=health_interval)
    specs = _service_specs(stack, user_env, wanted, gateway_replicas)
    running = RunningStack(
        stack,
        supervisor,
        service_env,
        [spec.name for spec in specs if spec.name.startswith(GATEWAY)],
        [spec.name for spec in specs],
    )
    try:
        started = time.monotonic()
        supervisor.start(stack.nats_spec())
        await running.wait_healthy(["nats"], START_TIMEOUT["nats"])
        try:
            await asyncio.to_thread(stack.postgres.init)
        except subprocess.CalledProcessError as exc:
            raise StackError(f"initdb failed: {exc.stderr.decode(errors='replace')}") from None
        supervisor.start(stack.postgres_spec())
        await running.wait_healthy(["postgres"], START_TIMEOUT["postgres"])
        await ensure_database(stack.postgres.url())
        for spec in specs:
            supervisor.start(spec)
        await running.wait_healthy(running.services, START_TIMEOUT["services"])
        running.started_in = time.monotonic() - started
        yield running
    finally:
        try:
            await asyncio.shield(supervisor.stop_all())
        except BaseException:
            supervisor.kill_all()
            raise
