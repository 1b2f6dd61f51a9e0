"""The AsyncAPI 3.0 document of wacast's NATS interface, generated from the contracts.

Every stream (`wacast.contracts.streams.ALL`) becomes one channel per subject kind, with its
address built by the real `Topology` builders (ids replaced by `{placeholders}`) and the
events stored under that kind as its messages; payload schemas are msgspec's JSON schemas of
the event types. Commands (one channel per owner, answered with a `Reply`), queries, live
updates and the dead-letter stream are listed too.

Regenerate docs/asyncapi.yaml after changing a contract:

    .venv/bin/python -m wacast.runtime.asyncapi docs/asyncapi.yaml

(a test fails while the committed file differs from a fresh generation).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

from wacast.contracts import queries
from wacast.contracts.base import Reply
from wacast.contracts.commands import OWNERS
from wacast.contracts.streams import ALL, DEAD_LETTER_KEY, StreamSpec
from wacast.contracts.subjects import Topology, partition_of

REF = "#/components/schemas/{name}"
_SENTINEL = "ZQ{}QZ"
_SENTINEL_RE = re.compile(r"ZQ([a-z_]+)QZ")

Builder = Callable[..., str]
SUBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "device": ("device", ("tenant_id", "device_id")),
    "lead": ("lead", ("tenant_id", "lead_id")),
    "leadphone": ("lead_phone", ("tenant_id", "phone_key")),
    "leadimport": ("lead_import", ("tenant_id", "import_id")),
    "media": ("media", ("tenant_id", "media_id")),
    "campaign": ("campaign", ("tenant_id", "campaign_id")),
    "sendreq": ("send_request", ("tenant_id", "device_id", "message_id")),
    "lane": ("lane", ("tenant_id", "device_id")),
    "lanecp": ("lane_checkpoint", ("tenant_id", "device_id")),
    "msg": ("message", ("tenant_id", "message_id")),
    "sendctl": ("send_control", ("tenant_id", "scope", "scope_id")),
    "fanout": ("fanout", ("tenant_id", "campaign_id")),
    "inbound": ("inbound", ("tenant_id", "lead_or_contact")),
    "sequence": ("sequence", ("tenant_id", "sequence_id")),
    "enrollment": ("enrollment", ("tenant_id", "enrollment_id")),
    "tenant": ("tenant", ("tenant_id",)),
    "apikey": ("api_key", ("key_id",)),
    "webhook": ("webhook", ("tenant_id", "webhook_id")),
    "whdelivery": ("webhook_delivery", ("tenant_id", "delivery_id")),
}
"""Subject kind -> the `Topology` method that builds its subjects, and its arguments."""

PARAMETERS: dict[str, str] = {
    "prefix": "Namespace of the installation (`WACAST_NAMESPACE`, default `wacast`).",
    "partition": "Send partition of the device: crc32(device_id) mod 64.",
    "tenant_id": "The tenant.",
    "device_id": "A device.",
    "lead_id": "A lead.",
    "phone_key": "hash(tenant, phone): the phone's claim key (never the phone itself).",
    "lead_or_contact": "A lead id, or the phone key of a contact who is not a lead.",
    "import_id": "A lead import.",
    "media_id": "A media item.",
    "campaign_id": "A campaign.",
    "message_id": "A message: hash(campaign, lead) or hash(enrollment, step id).",
    "scope": "What a send control applies to: campaign, enrollment or lead.",
    "scope_id": "The campaign, enrollment or lead id.",
    "sequence_id": "A sequence.",
    "enrollment_id": "An enrollment: hash(sequence, lead, n).",
    "key_id": "An API key's id.",
    "webhook_id": "A webhook endpoint.",
    "delivery_id": "One source event's delivery to one endpoint: hash(webhook, stream, seq).",
    "stream": "Name of the stream the dead message came from.",
    "consumer": "Name of the consumer that gave up on it.",
    "command": "The command's type name.",
    "query": "The query's name.",
}


def subject_template(kind: str) -> str:
    """The address of `kind`'s subjects, built by the real builder, ids as placeholders."""
    if kind not in SUBJECTS:
        raise KeyError(f"no subject builder known for kind {kind!r}: add it to SUBJECTS")
    method, args = SUBJECTS[kind]
    return template(method, *args)


def template(method: str, *args: str) -> str:
    """What `Topology.<method>(*args)` builds, with `{arg}` placeholders (literal args that
    are not placeholder names, like an owner token, stay as they are)."""
    topology = Topology(_SENTINEL.format("prefix"))
    values = [_SENTINEL.format(arg) if arg in PARAMETERS else arg for arg in args]
    built: str = getattr(topology, method)(*values)
    if "device_id" in args:
        partition = str(partition_of(_SENTINEL.format("device_id")))
        built = ".".join("{partition}" if t == partition else t for t in built.split("."))
    return _SENTINEL_RE.sub(lambda m: "{" + m.group(1) + "}", built)


def _parameters(address: str) -> dict[str, Any]:
    names = re.findall(r"\{([a-z_]+)\}", address)
    found: dict[str, Any] = {}
    for name in names:
        entry: dict[str, Any] = {"description": PARAMETERS.get(name, name)}
        if name == "prefix":
            entry["default"] = "wacast"
        found[name] = entry
    return found


def query_subjects() -> list[str]:
    """Query names the contracts declare: the report-service's, plus every module-level
    `*_QUERY` constant of a contracts module and `queries.API_KEYS`."""
    import wacast.contracts as package

    names = list(queries.REPORT_QUERIES)
    extra = getattr(queries, "API_KEYS", None)
    if isinstance(extra, str):
        names.append(extra)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"wacast.contracts.{info.name}")
        for attribute, value in sorted(vars(module).items()):
            if attribute.endswith("_QUERY") and isinstance(value, str):
                names.append(value)
    return list(dict.fromkeys(names))


def _members(union: Any) -> list[type[msgspec.Struct]]:
    return list(getattr(union, "__args__", (union,)))


def _tag(cls: type[msgspec.Struct]) -> str:
    tag = cls.__struct_config__.tag
    return str(tag) if tag is not None else cls.__name__


def _message(cls: type[msgspec.Struct], summary: str = "") -> dict[str, Any]:
    doc = (cls.__doc__ or "").strip()
    message: dict[str, Any] = {"name": _tag(cls), "title": cls.__name__}
    if summary:
        message["summary"] = summary
    if doc:
        message["description"] = " ".join(doc.split())
    version = getattr(cls, "version", None)
    if isinstance(version, int):
        message["x-schema-version"] = version
    message["payload"] = {"$ref": REF.format(name=cls.__name__)}
    return message


def build() -> dict[str, Any]:
    """The whole document as plain data (deterministic: same code, same document)."""
    types: list[Any] = []
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add_messages(classes: list[type[msgspec.Struct]], summary: str = "") -> dict[str, Any]:
        refs: dict[str, Any] = {}
        for cls in classes:
            messages.setdefault(cls.__name__, _message(cls, summary))
            refs[cls.__name__] = {"$ref": f"#/components/messages/{cls.__name__}"}
            if cls not in types:
                types.append(cls)
        return refs

    for spec in ALL:
        _stream_channels(spec, channels, operations, add_messages)

    dlq = template("dead_letter", "stream", "consumer")
    channels["DLQ"] = {
        "address": dlq,
        "title": f"stream {DEAD_LETTER_KEY}",
        "description": "Dead letters: the original bytes and headers of a message that could "
        "not be decoded or kept failing, plus `Wacast-Error`, `Wacast-Original-Subject`, "
        "`Wacast-Original-Stream` and `Wacast-Original-Seq` headers. Payload: whatever the "
        "original message held.",
        "parameters": _parameters(dlq),
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Dead letter",
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in (
                    "Wacast-Error",
                    "Wacast-Original-Subject",
                    "Wacast-Original-Stream",
                    "Wacast-Original-Seq",
                )
            },
        },
        "payload": {"description": "The original payload, byte for byte."},
    }

    add_messages([Reply], "The owner's answer to a command")
    for owner, union in OWNERS.items():
        address = template("command", owner, "command")
        key = f"commands.{owner}"
        params = _parameters(address)
        params["command"] = {
            "description": "The command's type name.",
            "enum": [_tag(cls) for cls in _members(union)],
        }
        channels[key] = {
            "address": address,
            "title": f"commands of {owner}",
            "description": f"Request/reply: commands served by the {owner} owner in queue "
            f"group `{owner}`; answered with a Reply.",
            "parameters": params,
            "messages": add_messages(_members(union)),
        }
        channels[f"{key}.reply"] = {
            "address": None,
            "title": f"replies of {owner}",
            "messages": {"Reply": {"$ref": "#/components/messages/Reply"}},
        }
        operations[f"{owner}.command"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{_escape(key)}"},
            "reply": {"channel": {"$ref": f"#/channels/{_escape(key)}.reply"}},
        }

    query_names = query_subjects()
    address = template("query", "query")
    params = _parameters(address)
    params["query"] = {"description": "The query's name.", "enum": query_names}
    channels["queries"] = {
        "address": address,
        "title": "queries",
        "description": "Request/reply: read-side queries. Every request is a Query "
        "(tenant_id, after_seq, after_stream) extended per query; the answer is the query's "
        "response struct or a Reply with a Problem (see wacast.contracts.queries).",
        "parameters": params,
        "messages": add_messages([queries.Query]),
    }
    live = template("live", "tenant_id")
    channels["live"] = {
        "address": live,
        "title": "live updates",
        "description": "Core NATS (not stored): ephemeral updates for WebSocket clients.",
        "parameters": _parameters(live),
        "messages": add_messages(_members(queries.LiveUpdate)),
    }
    operations["live.publish"] = {"action": "send", "channel": {"$ref": "#/channels/live"}}

    (_, schemas) = msgspec.json.schema_components(types, ref_template=REF)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "wacast NATS interface",
            "version": _version(),
            "description": "Event streams, subjects, commands, queries and live updates of "
            "wacast, generated from wacast.contracts by `python -m wacast.runtime.asyncapi`. "
            "Every stored event is JSON tagged by `type` with its schema version `v`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "nats:4222",
                "protocol": "nats",
                "description": "NATS with JetStream (`WACAST_NATS_URL`).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def _stream_channels(
    spec: StreamSpec,
    channels: dict[str, Any],
    operations: dict[str, Any],
    add_messages: Callable[[list[type[msgspec.Struct]]], dict[str, Any]],
) -> None:
    members = _members(spec.union)
    for kind in spec.kinds:
        address = subject_template(kind)
        classes = [cls for cls in members if getattr(cls, "subject_kind", "") == kind]
        key = f"{spec.key}.{kind}"
        channels[key] = {
            "address": address,
            "title": f"stream {spec.key}: {kind}",
            "description": f"{spec.description}. JetStream stream `{{PREFIX}}_{spec.key}`, "
            f"subjects `{{prefix}}.{kind}.>`.",
            "parameters": _parameters(address),
            "messages": add_messages(classes),
        }
        operations[f"{key}.append"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_escape(key)}"},
        }
    unplaced = [
        cls.__name__ for cls in members if getattr(cls, "subject_kind", "") not in spec.kinds
    ]
    if unplaced:
        raise ValueError(f"{spec.key}: events with no subject kind of the stream: {unplaced}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _version() -> str:
    try:
        return metadata.version("wacast-contracts")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def render() -> str:
    import yaml  # type: ignore[import-untyped]

    header = (
        "# Generated by `.venv/bin/python -m wacast.runtime.asyncapi docs/asyncapi.yaml` "
        "from wacast.contracts.\n# Do not edit: change the contracts and regenerate.\n"
    )
    body: str = yaml.safe_dump(build(), sort_keys=False, width=100, allow_unicode=True)
    return header + body


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if not args or args[0] == "-":
        sys.stdout.write(text)
    else:
        Path(args[0]).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
