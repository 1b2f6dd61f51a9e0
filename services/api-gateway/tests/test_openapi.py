"""The OpenAPI document is pinned, and the API keeps its word: schemathesis over every
operation finds no server error and no response that breaks the document.

A deeper fuzz: `WACAST_FUZZ_EXAMPLES=100`. After an intended change of the API, regenerate
the pinned document and review the diff:

    WACAST_UPDATE_GOLDEN=1 .venv/bin/pytest services/api-gateway/tests/test_openapi.py -q
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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from wacast.api_gateway.app import create_app

from .conftest import Caller, Stack

GOLDEN = Path(__file__).parent / "golden" / "openapi.json"
UPDATE = os.environ.get("WACAST_UPDATE_GOLDEN") == "1"
EXAMPLES = int(os.environ.get("WACAST_FUZZ_EXAMPLES", "10"))
"""Per operation; 10 keeps the suite quick (~1,000 requests), raise it for a deeper run."""
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def document(stack: Stack) -> dict[str, Any]:
    schema: dict[str, Any] = create_app(stack.gw).openapi_schema.to_schema()
    return schema


def test_the_openapi_document_matches_the_pinned_one(stack: Stack) -> None:
    current = json.dumps(document(stack), indent=2, sort_keys=True) + "\n"
    if UPDATE:
        GOLDEN.write_text(current)
    assert GOLDEN.exists(), "no pinned document: run with WACAST_UPDATE_GOLDEN=1"
    assert current == GOLDEN.read_text(), (
        "the API's OpenAPI document changed: if on purpose, regenerate with "
        "WACAST_UPDATE_GOLDEN=1 and review the diff"
    )


def test_every_operation_is_documented_with_its_problems(stack: Stack) -> None:
    paths = document(stack)["paths"]
    for path, operations in paths.items():
        if not path.startswith("/api/v1"):
            continue
        for method, operation in operations.items():
            assert {"401", "422", "429"} <= set(operation["responses"]), (method, path)
            assert operation.get("summary"), (method, path)


def fuzz(base_url: str, raw: dict[str, Any], key: str) -> list[str]:
    """Run schemathesis over every operation (stateless); the failures, one line each."""
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:
            failures.append(f"{operation.label}: {' '.join(str(exc).split())[:600]}")
    return failures


@pytest.mark.timeout(110)
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    stack: Stack, http_url: str, acme: Caller
) -> None:
    failures = await asyncio.to_thread(fuzz, http_url, document(stack), acme.key)

    assert failures == []
