"""What the deployment files must agree with: the services, their modules and settings."""

from __future__ import annotations

import importlib

import msgspec

from wacast.runtime.settings import env_name

MODULES = {
    "api-gateway": "wacast.api_gateway",
    "device-gateway": "wacast.device_gateway",
    "campaign-service": "wacast.campaign_service",
    "sequence-service": "wacast.sequence_service",
    "report-service": "wacast.report_service",
    "webhook-service": "wacast.webhook_service",
    "wa-simulator": "wacast.wa_simulator",
}
"""Service name (as `./dev up`, the image's entrypoint and the manifests call it) -> module."""


def settings_variables(module: str) -> set[str]:
    """The `WACAST_*` variables the service's Settings class reads."""
    settings = importlib.import_module(f"{module}.settings").Settings
    return {env_name(f.name) for f in msgspec.structs.fields(settings)}
