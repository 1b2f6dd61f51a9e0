"""Runs long-lived child processes: restarts crashes with backoff, polls health, stops in order.

A Ctrl-C in the terminal reaches only the supervisor (each child has its own process group),
which then stops the children itself, highest tier first: services before the databases
they write to.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from wacast.cli.devstack_proc import kill_group, spawn

HealthCheck = Callable[[], Awaitable[bool]]


class State(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    backoff: float = 1.0
    """Delay before the first restart; it doubles with each further rapid crash."""
    max_backoff: float = 30.0
    rapid: float = 30.0
    """A crash sooner than this many seconds after start counts as rapid."""
    max_rapid_crashes: int = 5
    """This many rapid crashes in a row and the process is given up as failed."""

    def delay(self, rapid_crashes: int) -> float:
        return float(min(self.backoff * 2 ** max(rapid_crashes - 1, 0), self.max_backoff))


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    log: Path
    env: Mapping[str, str] | None = None
    port: int | None = None
    health: HealthCheck | None = None
    """None: healthy once it has run for `settle` seconds."""
    settle: float = 0.5
    """With no health check, a process that exits sooner than this never counted as healthy."""
    tier: int = 0
    """Higher tiers stop first."""
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 10.0
    """Then SIGKILL."""
    user: str | None = None
    start_timeout: float = 60.0
    """Not healthy this long after start: shown as unhealthy."""


@dataclass
class Process:
    spec: ProcessSpec
    state: State = State.STARTING
    pid: int | None = None
    restarts: int = 0
    rapid_crashes: int = 0
    exit_codes: list[int] = field(default_factory=list)
    started_at: list[float] = field(default_factory=list)
    """Monotonic time of each start."""
    error: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    task: asyncio.Task[None] | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class Supervisor:
    def __init__(
        self,
        policy: RestartPolicy | None = None,
        on_change: Callable[[Process], None] | None = None,
        health_interval: float = 2.0,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self.on_change = on_change
        self.health_interval = health_interval
        self.processes: dict[str, Process] = {}

    def start(self, spec: ProcessSpec) -> Process:
        process = Process(spec)
        self.processes[spec.name] = process
        process.task = asyncio.create_task(self._run(process), name=f"supervise {spec.name}")
        return process

    async def wait_healthy(
        self, names: Iterable[str], timeout: float, cancel: asyncio.Event | None = None
    ) -> str | None:
        """None once all are healthy, else why not: `failed: <name>`, `timeout` or `cancelled`."""
        wanted = [self.processes[name] for name in names]
        deadline = time.monotonic() + timeout
        while not all(p.state is State.HEALTHY for p in wanted):
            failed = next((p for p in wanted if p.state is State.FAILED), None)
            if failed is not None:
                return f"failed: {failed.spec.name}"
            if cancel is not None and cancel.is_set():
                return "cancelled"
            if time.monotonic() > deadline:
                return "timeout"
            await asyncio.sleep(0.05)
        return None

    async def stop_all(self) -> None:
        """Stop every process, highest tier first; a tier's processes stop together."""
        for tier in sorted({p.spec.tier for p in self.processes.values()}, reverse=True):
            batch = [p for p in self.processes.values() if p.spec.tier == tier]
            await asyncio.gather(*(self._stop(p) for p in batch))

    async def stop(self, process: Process) -> None:
        """Stop one process (its stop signal, then SIGKILL after its timeout); no restart."""
        await self._stop(process)

    def kill_all(self) -> None:
        """Impatient shutdown: SIGKILL every process group now."""
        for process in self.processes.values():
            process.stop_requested.set()
            if process.alive:
                kill_group(process.pid)

    def _set(self, process: Process, state: State) -> None:
        if process.state is not state:
            process.state = state
            if self.on_change is not None:
                self.on_change(process)

    async def _run(self, process: Process) -> None:
        stop = process.stop_requested
        while not stop.is_set():
            try:
                self._spawn(process)
            except (OSError, subprocess.SubprocessError) as exc:
                process.error = f"cannot start {process.spec.argv[0]}: {exc}"
                self._set(process, State.FAILED)
                return
            started = time.monotonic()
            code = await self._watch(process, started)
            process.exit_codes.append(code)
            kill_group(process.pid)
            if stop.is_set():
                return
            if time.monotonic() - started >= self.policy.rapid:
                process.rapid_crashes = 0
            process.rapid_crashes += 1
            if process.rapid_crashes >= self.policy.max_rapid_crashes:
                process.error = f"crashed {process.rapid_crashes} times in a row, last exit {code}"
                self._set(process, State.FAILED)
                return
            self._set(process, State.RESTARTING)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.policy.delay(process.rapid_crashes))
            if not stop.is_set():
                process.restarts += 1

    def _spawn(self, process: Process) -> None:
        process.popen = spawn(process.spec)
        process.pid = process.popen.pid
        process.exited.clear()
        process.started_at.append(time.monotonic())
        process.state = State.STARTING
        if self.on_change is not None:
            self.on_change(process)

    async def _watch(self, process: Process, started: float) -> int:
        """Probe health (without delaying exit detection) until the process exits; its code."""
        popen, stop = process.popen, process.stop_requested
        assert popen is not None
        probe: asyncio.Task[bool] | None = None
        next_probe = started
        while (code := popen.poll()) is None:
            if probe is None and time.monotonic() >= next_probe and not stop.is_set():
                probe = asyncio.create_task(self._probe(process.spec))
            elif probe is not None and probe.done():
                if not stop.is_set():
                    self._set(process, self._judge(process, probe.result(), started))
                probe = None
                fast = process.state is not State.HEALTHY
                next_probe = time.monotonic() + (0.2 if fast else self.health_interval)
            await asyncio.sleep(0.05)
        if probe is not None:
            probe.cancel()
        process.exited.set()
        return code

    def _judge(self, process: Process, healthy: bool, started: float) -> State:
        settling = process.spec.health is None and time.monotonic() - started < process.spec.settle
        if healthy and not settling:
            return State.HEALTHY
        late = time.monotonic() - started > process.spec.start_timeout
        if process.state in (State.HEALTHY, State.UNHEALTHY) or late:
            return State.UNHEALTHY
        return State.STARTING

    @staticmethod
    async def _probe(spec: ProcessSpec) -> bool:
        if spec.health is None:
            return True
        try:
            return await asyncio.wait_for(spec.health(), 3)
        except Exception:
            return False

    async def _stop(self, process: Process) -> None:
        process.stop_requested.set()
        if process.alive:
            self._set(process, State.STOPPING)
            assert process.popen is not None
            with contextlib.suppress(ProcessLookupError):
                process.popen.send_signal(process.spec.stop_signal)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.exited.wait(), process.spec.stop_timeout)
            kill_group(process.pid)
        if process.task is not None:
            await process.task
        if process.state is not State.FAILED:
            self._set(process, State.STOPPED)
