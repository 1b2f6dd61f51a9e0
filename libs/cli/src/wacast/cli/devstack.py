"""What `./dev up` runs: nats-server, Postgres and every service, their ports and environment."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from wacast.cli.supervisor import HealthCheck, ProcessSpec
from wacast.contracts.tenants import new_api_key
from wacast.runtime.embedded import NatsPlan, PostgresPlan, _system_user, free_port

DATABASE = "wacast"


@dataclass(frozen=True)
class Component:
    name: str
    variable: str
    """The environment variable that sets its port."""
    default_port: int
    module: str | None = None
    """`python -m` module of a service; None for nats and postgres."""
    doc: str = ""


NATS = Component("nats", "WACAST_DEV_NATS_PORT", 4222, doc="Port of the dev stack's nats-server.")
POSTGRES = Component(
    "postgres", "WACAST_DEV_POSTGRES_PORT", 5432, doc="Port of the dev stack's Postgres."
)
INFRA = (NATS, POSTGRES)
SERVICES = (
    Component("device-gateway", "WACAST_GATEWAY_PORT", 8081, "wacast.device_gateway"),
    Component("campaign-service", "WACAST_CAMPAIGNS_PORT", 8082, "wacast.campaign_service"),
    Component("sequence-service", "WACAST_SEQUENCES_PORT", 8083, "wacast.sequence_service"),
    Component("report-service", "WACAST_REPORTS_PORT", 8084, "wacast.report_service"),
    Component("webhook-service", "WACAST_WEBHOOKS_PORT", 8085, "wacast.webhook_service"),
    Component("api-gateway", "WACAST_API_PORT", 8080, "wacast.api_gateway"),
    Component("wa-simulator", "WACAST_SIM_PORT", 8099, "wacast.wa_simulator"),
)
COMPONENTS = INFRA + SERVICES
DEV_TENANT = "dev"
"""The tenant `./dev up` creates (unless `WACAST_DEV_TENANT` names another)."""
DEFAULT_BASE_PORT = 8080
"""`--base-port B` shifts every default port by B - 8080."""


class PortError(Exception):
    """A port is malformed or already taken; the message names the variable to change."""


def resolve_ports(
    env: Mapping[str, str], *, auto: bool = False, base: int = DEFAULT_BASE_PORT
) -> dict[str, int]:
    """Port of each component: a `WACAST_*` variable the user set wins, then --ports/--base-port."""
    ports: dict[str, int] = {}
    for component in COMPONENTS:
        raw = env.get(component.variable)
        if raw is not None:
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise PortError(f"{component.variable}={raw!r} is not a port number")
            ports[component.name] = int(raw)
        elif auto:
            ports[component.name] = free_port()
        else:
            ports[component.name] = component.default_port + base - DEFAULT_BASE_PORT
    return ports


def check_ports_free(ports: Mapping[str, int]) -> None:
    """Fail before starting anything when a port is taken (or asked for twice)."""
    by_name = {component.name: component for component in COMPONENTS}
    seen: dict[int, str] = {}
    for name, port in ports.items():
        variable = by_name[name].variable
        if port in seen:
            raise PortError(f"{name} and {seen[port]} both want port {port}: change {variable}")
        seen[port] = name
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                why = "is already in use" if exc.errno == errno.EADDRINUSE else f"fails: {exc}"
                raise PortError(
                    f"port {port} for {name} {why}; set {variable} to another port "
                    f"(or run `./dev up --ports auto`)"
                ) from None


@dataclass(frozen=True)
class Stack:
    data: Path
    ports: Mapping[str, int]

    @property
    def nats(self) -> NatsPlan:
        return NatsPlan(data_dir=self.data / "nats", port=self.ports["nats"])

    @property
    def postgres(self) -> PostgresPlan:
        return PostgresPlan(data_dir=self.data / "postgres", port=self.ports["postgres"])

    @property
    def database_url(self) -> str:
        return self.postgres.url(DATABASE)

    def dev_api_key(self, env: Mapping[str, str]) -> str:
        """`WACAST_DEV_API_KEY`, or the key this data folder was given on its first run."""
        given = env.get("WACAST_DEV_API_KEY")
        if given:
            return given
        saved = self.data / "dev-api-key"
        if saved.exists():
            return saved.read_text().strip()
        key = new_api_key()
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.touch(mode=0o600)
        saved.write_text(key + "\n")
        return key

    def log(self, name: str) -> Path:
        return self.data / "logs" / f"{name}.log"

    def service_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The user's environment, pointed at this stack's NATS, Postgres and ports."""
        merged = dict(env)
        merged["WACAST_NATS_URL"] = self.nats.url
        merged["WACAST_DATABASE_URL"] = self.database_url
        for component in SERVICES:
            merged[component.variable] = str(self.ports[component.name])
        merged["WACAST_SIM_URL"] = f"http://127.0.0.1:{self.ports['wa-simulator']}"
        merged.setdefault("WACAST_DEV_TENANT", DEV_TENANT)
        merged["WACAST_DEV_API_KEY"] = self.dev_api_key(env)
        # neonize tags one-to-one sends as bot messages unless told otherwise at launch;
        # wacast sends what the operator wrote, from the operator's own account.
        merged.setdefault("NEONIZE_BOT_TAG", "off")
        return merged

    def nats_spec(self) -> ProcessSpec:
        port = self.ports["nats"]
        return ProcessSpec(
            "nats", self.nats.command(), self.log("nats"), port=port, health=tcp_open(port)
        )

    def postgres_spec(self) -> ProcessSpec:
        """Run after `PostgresPlan.init()`; SIGINT is Postgres's fast shutdown."""
        plan = self.postgres
        return ProcessSpec(
            "postgres",
            plan.command(),
            self.log("postgres"),
            port=plan.port,
            health=postgres_accepts(plan.url()),
            tier=1,
            stop_signal=signal.SIGINT,
            stop_timeout=30,
            user=_system_user(),
        )

    def service_specs(self, env: Mapping[str, str]) -> list[ProcessSpec]:
        service_env = self.service_env(env)
        return [
            ProcessSpec(
                component.name,
                [sys.executable, "-m", component.module],
                self.log(component.name),
                env=service_env,
                port=self.ports[component.name],
                health=http_ok(self.ports[component.name]),
                tier=2,
            )
            for component in SERVICES
            if component.module is not None
        ]

    def urls(self) -> list[tuple[str, str]]:
        api = f"http://127.0.0.1:{self.ports['api-gateway']}"
        return [
            ("API", f"{api}/api/v1"),
            ("dashboard", f"{api}/"),
            ("OpenAPI", f"{api}/schema"),
            ("simulator", f"http://127.0.0.1:{self.ports['wa-simulator']}"),
            ("NATS", self.nats.url),
            ("Postgres", self.database_url),
        ]


def health_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/healthz"


def tcp_open(port: int) -> HealthCheck:
    async def check() -> bool:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
        return True

    return check


def http_ok(port: int, path: str = "/healthz") -> HealthCheck:
    """GET `path` answers 200 (HTTP/1.0, so no client library is needed)."""

    async def check() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            await writer.drain()
            status = await reader.readline()
        finally:
            writer.close()
        return status.split()[1:2] == [b"200"]

    return check


def postgres_accepts(url: str) -> HealthCheck:
    async def check() -> bool:
        conn = await asyncpg.connect(url, timeout=2)
        await conn.close()
        return True

    return check


async def ensure_database(admin_url: str, name: str = DATABASE) -> None:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
