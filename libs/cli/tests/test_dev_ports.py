"""Which ports `./dev up` uses, and how it refuses a port that is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from wacast.cli.devstack import COMPONENTS, PortError, check_ports_free, resolve_ports
from wacast.cli.devstack_up import UpOptions, up


def test_default_ports_are_the_documented_ones() -> None:
    ports = resolve_ports({})
    assert ports["api-gateway"] == 8080
    assert ports["wa-simulator"] == 8099
    assert ports["nats"] == 4222
    assert ports["postgres"] == 5432


def test_base_port_shifts_every_default_port() -> None:
    ports = resolve_ports({}, base=9080)
    assert ports == {c.name: c.default_port + 1000 for c in COMPONENTS}


def test_a_port_variable_the_user_set_wins_over_base_port_and_auto() -> None:
    env = {"WACAST_API_PORT": "18080", "WACAST_DEV_NATS_PORT": "14222"}
    for ports in (resolve_ports(env, base=9080), resolve_ports(env, auto=True)):
        assert ports["api-gateway"] == 18080
        assert ports["nats"] == 14222


def test_auto_picks_distinct_ports() -> None:
    ports = resolve_ports({}, auto=True)
    assert len(set(ports.values())) == len(COMPONENTS)


def test_a_malformed_port_variable_is_refused_by_name() -> None:
    with pytest.raises(PortError, match="WACAST_SIM_PORT='eighty'"):
        resolve_ports({"WACAST_SIM_PORT": "eighty"})


def test_a_taken_port_is_refused_naming_the_port_and_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = resolve_ports({"WACAST_REPORTS_PORT": str(port)}, auto=True)
        with pytest.raises(PortError, match=f"port {port} .*WACAST_REPORTS_PORT"):
            check_ports_free(ports)


def test_up_fails_at_once_when_a_port_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"WACAST_DEV_POSTGRES_PORT": str(port)}

        code = up(UpOptions(data=tmp_path, auto_ports=True), env)

    assert code == 2
    message = capsys.readouterr().err
    assert f"port {port} for postgres is already in use" in message
    assert "WACAST_DEV_POSTGRES_PORT" in message
    assert not (tmp_path / "logs").exists()
