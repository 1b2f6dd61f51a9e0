"""`./dev up`: start the stack in order, say where it is, keep it running, stop it in order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wacast.cli.devstack import (
    DEV_TENANT,
    INFRA,
    SERVICES,
    PortError,
    Stack,
    check_ports_free,
    ensure_database,
    health_url,
    resolve_ports,
)
from wacast.cli.devstack_view import StatusView, describe
from wacast.cli.supervisor import Process, State, Supervisor

START_TIMEOUT = {"nats": 30.0, "postgres": 60.0, "services": 120.0}


@dataclass(frozen=True)
class UpOptions:
    data: Path
    auto_ports: bool = False
    base_port: int = 8080
    services: bool = True


def state_file(data: Path) -> Path:
    return data / "run" / "dev.json"


def read_state(data: Path) -> dict[str, Any] | None:
    """What the running `./dev up` last wrote; None when none runs."""
    try:
        state: dict[str, Any] = json.loads(state_file(data).read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def up(options: UpOptions, env: Mapping[str, str]) -> int:
    wanted = {c.name for c in INFRA + (SERVICES if options.services else ())}
    try:
        ports = resolve_ports(env, auto=options.auto_ports, base=options.base_port)
        ports = {name: port for name, port in ports.items() if name in wanted}
        running = read_state(options.data)
        if running is not None:
            print(
                f"dev up: wacast already runs with data in {options.data} (pid {running['pid']});"
                f" if it does not, remove {state_file(options.data)}",
                file=sys.stderr,
            )
            return 2
        check_ports_free(ports)
    except PortError as exc:
        print(f"dev up: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(Stack(options.data, ports), options, env))


async def _run(stack: Stack, options: UpOptions, env: Mapping[str, str]) -> int:
    supervisor = Supervisor()
    view = StatusView(supervisor.processes)

    def changed(process: Process) -> None:
        view.changed(process)
        _write_state(stack.data, supervisor.processes)

    supervisor.on_change = changed
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            supervisor.kill_all()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    problem: str | None = None
    with view:
        view.say("ports: " + ", ".join(f"{name} {port}" for name, port in stack.ports.items()))
        try:
            problem = await _start(stack, supervisor, options, env, stop)
            if problem is None:
                _announce(view, stack, options, env)
                await stop.wait()
            else:
                _explain(view, stack, supervisor, problem)
        finally:
            view.say("stopping (Ctrl-C again to kill at once)")
            await supervisor.stop_all()
            state_file(stack.data).unlink(missing_ok=True)
    view.say("wacast stopped")
    return 0 if problem in (None, "cancelled") else 1


async def _start(
    stack: Stack,
    supervisor: Supervisor,
    options: UpOptions,
    env: Mapping[str, str],
    stop: asyncio.Event,
) -> str | None:
    """None once everything is healthy; otherwise what went wrong."""
    supervisor.start(stack.nats_spec())
    if problem := await supervisor.wait_healthy(["nats"], START_TIMEOUT["nats"], stop):
        return problem
    try:
        await asyncio.to_thread(stack.postgres.init)
    except subprocess.CalledProcessError as exc:
        return f"initdb failed: {exc.stderr.decode(errors='replace').strip()}"
    supervisor.start(stack.postgres_spec())
    if problem := await supervisor.wait_healthy(["postgres"], START_TIMEOUT["postgres"], stop):
        return problem
    await ensure_database(stack.postgres.url())
    if not options.services:
        return None
    specs = stack.service_specs(env)
    for spec in specs:
        supervisor.start(spec)
    return await supervisor.wait_healthy(
        [spec.name for spec in specs], START_TIMEOUT["services"], stop
    )


def _announce(view: StatusView, stack: Stack, options: UpOptions, env: Mapping[str, str]) -> None:
    view.say("")
    for label, url in stack.urls():
        if options.services or label in ("NATS", "Postgres"):
            view.say(f"  {label:<10} {url}")
    if options.services:
        for component in SERVICES:
            view.say(f"  {'health':<10} {health_url(stack.ports[component.name])}")
        tenant = env.get("WACAST_DEV_TENANT", DEV_TENANT)
        view.say(f"  {'API key':<10} {stack.dev_api_key(env)}  (tenant {tenant})")
    view.say(f"  {'logs':<10} {stack.data / 'logs'}")
    view.say("wacast is up", style="bold green")


def _explain(view: StatusView, stack: Stack, supervisor: Supervisor, problem: str) -> None:
    if problem == "cancelled":
        return
    view.say(f"dev up: start-up failed ({problem})", style="bold red")
    for name, process in supervisor.processes.items():
        if process.state is not State.HEALTHY:
            log = stack.log(name)
            view.say(f"--- {name} is {process.state.value}; last lines of {log}:")
            view.say("\n".join(_tail(log, 20)))


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _write_state(data: Path, processes: Mapping[str, Process]) -> None:
    path = state_file(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [describe(process) for process in processes.values()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "processes": rows}, indent=1))
    tmp.replace(path)
