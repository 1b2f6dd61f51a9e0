"""Starting and killing one child of the supervisor: own process group, dies with its parent.

A child gets its own process group so that a terminal's Ctrl-C does not reach it directly
and so that killing the group also kills what it started. On Linux a child also gets the
parent-death signal, so a `./dev up` that is itself killed leaves no server holding a port.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wacast.cli.supervisor import ProcessSpec


def spawn(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    """Start `spec`, its output appended to its log after a line saying when and what."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- {stamp} dev: starting {' '.join(spec.argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if spec.env is None else dict(spec.env),
            user=spec.user,
            start_new_session=True,
            preexec_fn=_die_with_parent(spec.stop_signal),
        )


def kill_group(pid: int | None) -> None:
    """SIGKILL what is left of a child's process group (its own children included)."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send `sig` to the child when the supervisor dies."""
    if sys.platform != "linux":
        return None
    prctl = _libc().prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec
