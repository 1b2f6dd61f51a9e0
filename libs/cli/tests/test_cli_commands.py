"""The `wacast` command line end to end: wiring, exit codes, one-line errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import nats
import pytest
from typer.testing import CliRunner, Result

from wacast.cli import commands_projections
from wacast.cli.main import app
from wacast.contracts.devices import DeviceRegistered
from wacast.contracts.streams import DEVICES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.runtime.embedded import free_port
from wacast.runtime.projection import DbConnection, Envelope
from wacast.runtime.registry import ProjectionRegistration

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def invoke(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("wacast: error: ")
    return lines[0]


@pytest.fixture
def namespace(nats_url: str) -> Iterator[str]:
    prefix = f"c{uuid.uuid4().hex[:10]}"
    yield prefix

    async def drop() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        topology = Topology(prefix)
        heads = (topology.stream(""), f"KV_{topology.bucket('')}", f"OBJ_{topology.bucket('')}")
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(heads):
                await js.delete_stream(info.config.name)
        await nc.close()

    asyncio.run(drop())


def device_line(seq: int, device: str) -> bytes:
    event = DeviceRegistered(
        tenant_id="acme", occurred_at=T0, device_id=device, name=device, driver="sim"
    )
    line = {
        "stream": "DEVICES",
        "seq": seq,
        "subject": f"device.acme.{device}",
        "time": "2030-01-01T00:00:00Z",
        "headers": {"traceparent": "00-1-2-01"},
        "data": msgspec.json.decode(msgspec.json.encode(event)),
    }
    return msgspec.json.encode(line) + b"\n"


def test_import_from_stdin_then_export_to_stdout(nats_url: str, namespace: str) -> None:
    lines = device_line(1, "d1") + device_line(2, "d2")
    base = ["--nats-url", nats_url, "--namespace", namespace]

    imported = invoke(*base, "events", "import", "-", stdin=lines)
    exported = invoke(*base, "events", "export", "-")
    again = invoke(*base, "events", "import", "-", stdin=lines)

    assert imported.exit_code == 0, imported.output
    assert "imported 2 events (DEVICES 2)" in imported.stderr
    assert exported.exit_code == 0, exported.output
    out = [msgspec.json.decode(x) for x in exported.stdout.splitlines()]
    expected = [msgspec.json.decode(x) for x in lines.splitlines()]
    assert [{**x, "time": ""} for x in out] == [{**x, "time": ""} for x in expected]
    assert again.exit_code == 3
    assert "is not empty" in one_line_error(again)


def test_unreachable_nats_is_one_line_and_a_failure() -> None:
    port = free_port()
    for args in (("events", "export", "-"), ("clock", "advance", "10"), ("backup", "/tmp/x")):
        result = invoke("--nats-url", f"nats://127.0.0.1:{port}", *args)
        assert result.exit_code == 1
        assert f"cannot reach NATS at nats://127.0.0.1:{port}" in one_line_error(result)


class Nothing:
    name = "nothing"
    streams: Sequence[StreamSpec] = (DEVICES,)

    async def migrate(self, conn: DbConnection) -> None:
        return None

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        return None


def test_unreachable_postgres_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registration = ProjectionRegistration("nothing", "nothing", Nothing)
    monkeypatch.setattr(commands_projections, "discover", lambda: [registration])
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/wacast"

    result = invoke("--database-url", url, "projections", "rebuild")

    error = one_line_error(result)
    assert "cannot reach Postgres at postgresql://app@127.0.0.1" in error
    assert "s3cret" not in result.output


def test_bad_input_is_one_line_and_exit_status_2(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = invoke("events", "import", "/nonexistent/events.jsonl")
    assert missing.exit_code == 2
    assert "no such file: /nonexistent/events.jsonl" in one_line_error(missing)

    duration = invoke("clock", "advance", "5 weeks")
    assert duration.exit_code == 2
    assert "not a duration" in one_line_error(duration)
    backwards = invoke("clock", "advance", "0")
    assert "only moves forward" in one_line_error(backwards)

    namespace = invoke("--namespace", "a.b", "events", "export", "-")
    assert namespace.exit_code == 2
    assert "namespace 'a.b'" in one_line_error(namespace)

    monkeypatch.setenv("WACAST_LOG_LEVEL", "loud")
    settings = invoke("events", "export", "-")
    assert settings.exit_code == 2
    assert "WACAST_LOG_LEVEL='loud' is invalid" in one_line_error(settings)


def test_a_malformed_file_names_its_lines(nats_url: str, namespace: str, tmp_path: object) -> None:
    result = invoke(
        "--nats-url",
        nats_url,
        "--namespace",
        namespace,
        "events",
        "import",
        "-",
        stdin=device_line(1, "d1") + b"{oops\n" + device_line(2, "d2") + b"[]\n",
    )
    assert result.exit_code == 2
    assert "-: line 2: not an event line" in result.stderr
    assert "-: line 4: not an event line" in result.stderr
    assert "2 bad lines; nothing was imported" in result.stderr


def test_clock_advance_moves_the_shared_clock(nats_url: str, namespace: str) -> None:
    base = ["--nats-url", nats_url, "--namespace", namespace, "clock"]
    first = invoke(*base, "advance", "90s")
    second = invoke(*base, "advance", "1h")
    shown = invoke(*base, "show")

    assert first.exit_code == second.exit_code == shown.exit_code == 0
    one, two = (datetime.fromisoformat(r.stdout.strip()) for r in (first, second))
    assert two - one == timedelta(hours=1)
    assert datetime.fromisoformat(shown.stdout.strip()) == two
