"""The dev supervisor against tiny real subprocesses: restarts, giving up, stopping."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wacast.cli.supervisor import Process, ProcessSpec, RestartPolicy, State, Supervisor

FAST = RestartPolicy(backoff=0.3, max_backoff=5, rapid=10, max_rapid_crashes=3)


def python(
    tmp_path: Path,
    name: str,
    code: str,
    *,
    tier: int = 0,
    stop_signal: signal.Signals = signal.SIGTERM,
    stop_timeout: float = 10,
) -> ProcessSpec:
    return ProcessSpec(
        name,
        [sys.executable, "-c", code],
        tmp_path / f"{name}.log",
        tier=tier,
        stop_signal=stop_signal,
        stop_timeout=stop_timeout,
    )


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie holds no port and runs no code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def test_a_crashed_process_is_restarted_after_the_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "crashed-once"
    code = (
        "import pathlib, sys, time\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.touch()\n"
        "    sys.exit(3)\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(FAST)
    process = supervisor.start(python(tmp_path, "flaky", code))
    try:
        await until(lambda: process.restarts == 1 and process.state is State.HEALTHY)
        assert process.exit_codes == [3]
        assert process.started_at[1] - process.started_at[0] >= FAST.delay(1)
        assert process.pid is not None
        assert running(process.pid)
    finally:
        await supervisor.stop_all()


async def test_a_process_that_keeps_crashing_is_given_up_as_failed(tmp_path: Path) -> None:
    supervisor = Supervisor(FAST)
    process = supervisor.start(python(tmp_path, "broken", "raise SystemExit(7)"))
    try:
        assert await supervisor.wait_healthy(["broken"], 15) == "failed: broken"
        assert process.state is State.FAILED
        assert process.exit_codes == [7, 7, 7]
        assert process.restarts == 2
        gaps = [b - a for a, b in zip(process.started_at, process.started_at[1:], strict=False)]
        assert gaps[0] >= FAST.delay(1)
        assert gaps[1] >= FAST.delay(2) > FAST.delay(1)
        assert "3 times in a row" in (process.error or "")
    finally:
        await supervisor.stop_all()
    assert process.state is State.FAILED


def test_the_default_policy_never_restarts_faster_than_once_a_second() -> None:
    policy = RestartPolicy()
    delays = [policy.delay(n) for n in range(1, 10)]
    assert min(delays) >= 1
    assert delays == sorted(delays)
    assert max(delays) == policy.max_backoff


async def test_stop_all_leaves_no_child_or_grandchild_running(tmp_path: Path) -> None:
    grandchild_pid = tmp_path / "grandchild.pid"
    parent = (
        "import pathlib, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"pathlib.Path({str(grandchild_pid)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)"
    supervisor = Supervisor(FAST)
    processes = [
        supervisor.start(python(tmp_path, "sleeper", "import time; time.sleep(60)")),
        supervisor.start(python(tmp_path, "stubborn", stubborn, stop_timeout=0.5)),
        supervisor.start(python(tmp_path, "parent", parent)),
    ]
    await until(lambda: grandchild_pid.exists() and grandchild_pid.read_text() != "")
    assert await supervisor.wait_healthy([p.spec.name for p in processes], 10) is None
    pids = [p.pid for p in processes if p.pid is not None] + [int(grandchild_pid.read_text())]
    assert all(running(pid) for pid in pids)

    await supervisor.stop_all()

    assert [pid for pid in pids if running(pid)] == []
    assert {p.state for p in processes} == {State.STOPPED}
    assert processes[1].exit_codes == [-signal.SIGKILL]


async def test_higher_tiers_stop_before_lower_tiers_begin_stopping(tmp_path: Path) -> None:
    events: list[tuple[str, State]] = []

    def record(process: Process) -> None:
        events.append((process.spec.name, process.state))

    supervisor = Supervisor(FAST, on_change=record)
    sleep = "import time; time.sleep(60)"
    supervisor.start(python(tmp_path, "database", sleep, tier=0, stop_signal=signal.SIGINT))
    supervisor.start(python(tmp_path, "service", sleep, tier=1))
    assert await supervisor.wait_healthy(["database", "service"], 10) is None

    await supervisor.stop_all()

    assert events.index(("service", State.STOPPED)) < events.index(("database", State.STOPPING))


async def test_a_process_waiting_to_restart_stops_without_waiting_out_its_backoff(
    tmp_path: Path,
) -> None:
    slow = RestartPolicy(backoff=30, max_backoff=30, rapid=10, max_rapid_crashes=3)
    supervisor = Supervisor(slow)
    process = supervisor.start(python(tmp_path, "crasher", "raise SystemExit(1)"))
    await until(lambda: process.state is State.RESTARTING)
    began = time.monotonic()

    await supervisor.stop_all()

    assert time.monotonic() - began < 5
    assert process.state is State.STOPPED
    assert process.restarts == 0


async def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from wacast.cli.supervisor import ProcessSpec, Supervisor\n"
        "async def main():\n"
        "    supervisor = Supervisor()\n"
        "    argv = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        f"    log = Path({str(tmp_path / 'child.log')!r})\n"
        "    child = supervisor.start(ProcessSpec('child', argv, log))\n"
        "    await supervisor.wait_healthy(['child'], 10)\n"
        "    print(child.pid, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    assert host.stdout is not None
    child = int(await asyncio.wait_for(host.stdout.readline(), 15))
    assert running(child)

    host.kill()
    await host.wait()

    await until(lambda: not running(child), timeout=5)
