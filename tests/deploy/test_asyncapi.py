"""docs/asyncapi.yaml is generated from the contracts and kept in sync with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from wacast.contracts.commands import OWNERS
from wacast.contracts.streams import ALL
from wacast.runtime import asyncapi

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"
REGENERATE = ".venv/bin/python -m wacast.runtime.asyncapi docs/asyncapi.yaml"


def test_the_committed_document_equals_a_fresh_generation() -> None:
    assert DOC.read_text() == asyncapi.render(), f"docs/asyncapi.yaml is stale: run `{REGENERATE}`"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_stream_subject_and_event_type_is_described_and_every_ref_resolves() -> None:
    doc = yaml.safe_load(DOC.read_text())
    assert doc["asyncapi"] == "3.0.0"
    channels = doc["channels"]
    for spec in ALL:
        for kind in spec.kinds:
            channel = channels[f"{spec.key}.{kind}"]
            assert channel["address"].startswith("{prefix}." + kind + ".")
            for name in (p.strip("{}") for p in channel["address"].split(".")):
                assert name in channel["parameters"] or "{" not in name
        for event in spec.union.__args__:
            assert event.__name__ in doc["components"]["messages"], event
            assert event.__name__ in doc["components"]["schemas"], event
    for owner, union in OWNERS.items():
        assert set(channels[f"commands.{owner}"]["messages"]) == {
            c.__name__ for c in union.__args__
        }
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")


def test_send_request_subjects_carry_the_partition_from_the_real_builder() -> None:
    assert asyncapi.subject_template("sendreq") == (
        "{prefix}.sendreq.{partition}.{tenant_id}.{device_id}.{message_id}"
    )
    assert asyncapi.subject_template("tenant") == "{prefix}.tenant.{tenant_id}"
