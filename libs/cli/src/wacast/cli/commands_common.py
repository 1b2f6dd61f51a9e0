"""What every command shares: options, connections, and errors told in one line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import asyncpg
import msgspec
import nats
import typer
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError

from wacast.contracts.subjects import Topology
from wacast.runtime.registry import RegistryError
from wacast.runtime.settings import SettingsError

T = TypeVar("T")


class CliError(Exception):
    """A failure the user can act on; printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Options:
    nats_url: str
    namespace: str
    database_url: str
    quiet: bool = False
    stream_replicas: int = 1
    """Replicas of streams an import creates (`WACAST_STREAM_REPLICAS`)."""

    @property
    def topology(self) -> Topology:
        try:
            return Topology(self.namespace)
        except ValueError as exc:
            raise CliError(str(exc), 2) from None


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    if found is None:
        raise CliError("internal: global options missing")
    return found


async def _quiet(_: Exception) -> None:
    return None


async def connect_nats(url: str) -> Client:
    """Connect or fail fast: a command should not wait minutes for a server that is not there."""
    try:
        return await nats.connect(
            servers=[u.strip() for u in url.split(",") if u.strip()],
            name="wacast-cli",
            connect_timeout=3,
            max_reconnect_attempts=3,
            reconnect_time_wait=0.5,
            error_cb=_quiet,
        )
    except (NatsError, OSError, TimeoutError, ValueError) as exc:
        raise CliError(f"cannot reach NATS at {url} ({type(exc).__name__})") from None


@contextlib.asynccontextmanager
async def nats_session(opts: Options) -> AsyncIterator[Client]:
    nc = await connect_nats(opts.nats_url)
    try:
        yield nc
    finally:
        # Every append was acknowledged already: close, never wait on a drain timeout.
        with contextlib.suppress(Exception):
            await nc.close()


async def connect_postgres(url: str) -> asyncpg.Pool:
    """A small pool on `url`; the database is created when missing (like the services do)."""
    try:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=4, timeout=5)
        except asyncpg.InvalidCatalogNameError:
            base, _, name = url.rpartition("/")
            admin = await asyncpg.connect(f"{base}/postgres", timeout=5)
            try:
                await admin.execute(f'CREATE DATABASE "{name.split("?")[0]}"')
            finally:
                await admin.close()
            pool = await asyncpg.create_pool(url, min_size=1, max_size=4, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CliError(f"cannot reach Postgres at {_redacted(url)}: {_one_line(exc)}") from None
    if pool is None:  # pragma: no cover - create_pool returns None only with init errors
        raise CliError(f"cannot reach Postgres at {_redacted(url)}")
    return pool


def _redacted(url: str) -> str:
    """The URL without its password."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    credentials, _, host = tail.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}@{host}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"wacast: error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Known failures become one line on stderr and a non-zero exit status."""
    try:
        yield
    except CliError as exc:
        fail(str(exc), exc.code)
    except (SettingsError, RegistryError) as exc:
        fail(str(exc), 2)
    except FileNotFoundError as exc:
        fail(f"no such file: {exc.filename}", 2)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        fail(f"malformed input: {_one_line(exc)}", 2)
    except APIError as exc:
        fail(f"NATS refused the request: {_one_line(exc)}")
    except (NatsError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        fail(f"{type(exc).__name__}: {_one_line(exc)}")
    except OSError as exc:
        fail(_one_line(exc))
    except KeyboardInterrupt:
        typer.echo("wacast: interrupted", err=True)
        raise typer.Exit(130) from None


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's async body under `reported`."""
    with reported():
        return asyncio.run(work)
    raise AssertionError("unreachable")  # `reported` always raises when it catches


def err(message: str) -> None:
    """Progress and summaries go to stderr, so that `-` (stdout) stays pure data."""
    print(message, file=sys.stderr, flush=True)
