"""The OpenAPI document is pinned and documents every operation's problems. That the API
keeps its word (schemathesis over every operation: no server error, no response outside the
document) is tests/fuzz/test_api_schemathesis.py. After an intended change of the API,
regenerate the pinned document and review the diff:

    WACAST_UPDATE_GOLDEN=1 .venv/bin/pytest services/api-gateway/tests/test_openapi.py -q
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wacast.api_gateway.app import create_app

from .conftest import Stack

GOLDEN = Path(__file__).parent / "golden" / "openapi.json"
UPDATE = os.environ.get("WACAST_UPDATE_GOLDEN") == "1"


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
