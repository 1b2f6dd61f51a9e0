"""Configuration errors stop a process at start-up and name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from wacast.runtime.settings import CommonSettings, SettingsError, describe, load_settings


def test_unset_variables_keep_their_documented_defaults() -> None:
    settings = load_settings(CommonSettings, env={})
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.namespace == "wacast"


def test_a_set_variable_is_converted_to_the_field_type() -> None:
    settings = load_settings(CommonSettings, env={"WACAST_STREAM_REPLICAS": "3"})
    assert settings.stream_replicas == 3


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WACAST_STREAM_REPLICAS", "three"),
        ("WACAST_STREAM_REPLICAS", "2"),
        ("WACAST_CLOCK", "sundial"),
        ("WACAST_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(CommonSettings, env={variable: value})
    assert variable in str(refused.value)
    assert value in str(refused.value)


def test_every_setting_is_documented() -> None:
    rows = describe(CommonSettings)
    assert rows
    assert all(doc for _, _, doc in rows), [name for name, _, doc in rows if not doc]


@pytest.mark.parametrize(
    ("module", "variable"),
    [
        ("wacast.campaign_service", "WACAST_CAMPAIGNS_PORT"),
        ("wacast.device_gateway", "WACAST_GATEWAY_PORT"),
        ("wacast.wa_simulator", "WACAST_SIM_PAIR_DELAY"),
    ],
)
def test_a_service_with_a_bad_variable_stops_at_start_up_naming_it(
    module: str, variable: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module],
        env={variable: "not-a-number", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert variable in proc.stderr
    assert "Traceback" not in proc.stderr
