"""schemathesis over the whole public API, read from the running app's `/schema/openapi.json`.

Every operation gets valid and invalid requests (schemathesis' positive and negative modes),
with random ids and with the ids of a device, lead, campaign and sequence that exist, sent
with a valid key of one tenant. Whatever comes in, the API answers with a status the
document lists for the operation, the content type it declares and a body that fits its
schema, and never a server error; invalid requests are refused with a 4xx.

Examples per operation and mode: `WACAST_FUZZ_EXAMPLES` (default 6, about a minute for the
file on two cores); raise it for a long run, e.g. `WACAST_FUZZ_EXAMPLES=200`.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wacast.api_gateway.testing import Caller, Stack

PINNED = Path(__file__).parents[2] / "services/api-gateway/tests/golden/openapi.json"
"""The pinned document (kept equal to the live one by the api-gateway's tests): it names the
operations at collection time; each test reads its operation from the running app."""
EXAMPLES = int(os.environ.get("WACAST_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
KNOWN_IDS = ("device_id", "lead_id", "campaign_id", "sequence_id")
"""Path parameters the fuzz also fills with a resource that exists (never `key_id`: a
revoked fuzzing key would turn the rest of the run into 401s)."""


def operations() -> list[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = json.loads(PINNED.read_text())["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


class Fuzz:
    """The live document and the resources of the fuzzing tenant, made once per session."""

    def __init__(self, base_url: str, caller: Caller, known: dict[str, str]) -> None:
        self.base_url = base_url
        self.caller = caller
        self.known = known
        self.schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")

    def run(self, method: str, path: str) -> list[str]:
        """Every failure schemathesis finds on one operation, one line each."""
        operation = self.schema[path][method]
        ids = {name: self.known[name] for name in KNOWN_IDS if f"{{{name}}}" in path}
        rounds: list[dict[str, Any]] = [{}, {"path_parameters": ids}] if ids else [{}]
        failures: list[str] = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for fixed in rounds:
                strategy = operation.as_strategy(generation_mode=mode, **fixed)
                failure = self._explore(strategy)
                if failure:
                    failures.append(f"{mode.value} {(bool(fixed) and 'known ids') or ''}{failure}")
        return failures

    def _explore(self, strategy: Any) -> str:
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def check(case: Any) -> None:
            response = case.call(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.caller.key}"},
                timeout=30,
            )
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:
            return " ".join(str(exc).split())[:1500]
        return ""


async def seeded(stack: Stack, caller: Caller) -> dict[str, str]:
    """A connected device, a lead on it, a pending campaign and a draft sequence."""
    http = caller.http
    device = await http.post("/api/v1/devices", json={"name": "Fuzz", "driver": "sim"})
    assert device.status_code == 201, device.text
    device_id = str(device.json()["id"])
    await stack.devices.connect(caller.tenant_id, device_id)
    lead = await http.post(
        "/api/v1/leads", json={"phone": "+14155550100", "name": "Ada", "device_id": device_id}
    )
    assert lead.status_code == 201, lead.text
    campaign = await http.post(
        "/api/v1/campaigns",
        json={
            "name": "Fuzz",
            "message": {"text": "Hi {name}"},
            "schedule_at": "2099-01-01T09:00:00Z",
        },
    )
    assert campaign.status_code == 201, campaign.text
    sequence = await http.post(
        "/api/v1/sequences",
        json={"name": "Fuzz", "steps": [{"delay_seconds": 60, "message": {"text": "Hi"}}]},
    )
    assert sequence.status_code == 201, sequence.text
    return {
        "device_id": device_id,
        "lead_id": str(lead.json()["id"]),
        "campaign_id": str(campaign.json()["id"]),
        "sequence_id": str(sequence.json()["id"]),
    }


@pytest.fixture(scope="session")
async def fuzz(stack: Stack, http_url: str) -> Fuzz:
    caller = await stack.tenant("fuzz")
    known = await seeded(stack, caller)
    return await asyncio.to_thread(Fuzz, http_url, caller, known)


@pytest.mark.parametrize(("method", "path"), operations(), ids=lambda v: str(v))
async def test_no_request_gets_a_server_error_or_an_answer_outside_the_document(
    fuzz: Fuzz, method: str, path: str
) -> None:
    failures = await asyncio.to_thread(fuzz.run, method, path)

    assert failures == [], "\n".join(failures)
