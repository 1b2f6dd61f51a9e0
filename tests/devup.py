"""`./dev up --ports auto` as a child process of a test, the way a user starts it.

It runs `python -m wacast.cli.dev up` with the suite's own interpreter: that is all `./dev`
does after its bootstrap (install uv, `uv sync --frozen`), which must have happened already
for the suite to run.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UP_DEADLINE = 120.0
STOP_DEADLINE = 30.0


class Output:
    """Lines of `./dev up`'s output, read in a thread (so that waiting has a deadline, and
    the pipe never fills up while the tests run)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.lines:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} after {timeout}s:\n" + self.text
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, "./dev up exited early:\n" + self.text
            self.lines.append(line)


@contextlib.contextmanager
def dev_up(
    data: Path, extra_env: Mapping[str, str] | None = None, *, up_deadline: float = UP_DEADLINE
) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    """`./dev up` with its data under `data`, no WACAST_ variable of the caller's but
    `extra_env`, running until "wacast is up"; on the way out a stack the test left running
    gets Ctrl-C, then is killed after `STOP_DEADLINE`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("WACAST_")}
    env.update(PYTHONUNBUFFERED="1", **(extra_env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wacast.cli.dev", "up", "--ports", "auto", "--data", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(proc)
    try:
        output.wait_for("wacast is up", up_deadline)
        yield proc, output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
