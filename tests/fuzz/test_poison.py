"""Poison on every subject the services consume: garbage bytes, JSON that is no event, a
valid event of another stream, and a payload at the server's `max_payload`. Each lands in
the dead-letter stream once per consumer that reads it (with its error header), and every
consumer goes on with the valid event published right after. Command and query servers
answer malformed requests with a problem and keep answering.

What is consumed is read from the running system, not from a list kept here: the durable
consumers and command/query servers the services' brokers registered, and the projections
(their streams and subject kinds) that wrote checkpoints into the stack's database.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from faststream.nats import NatsBroker

from wacast.api_gateway.testing import Stack
from wacast.contracts.base import Event, Problem, Reply
from wacast.contracts.streams import ALL, BY_KIND, DEAD_LETTER_KEY, StreamSpec, codec
from wacast.runtime.deadletter import (
    ERROR_HEADER,
    ORIGIN_SEQ,
    ORIGIN_STREAM,
    ORIGIN_SUBJECT,
    TRUNCATED,
)

GOLDEN = Path(__file__).parents[2] / "libs/contracts/tests/golden/events.json"
DEADLINE = 60.0


@dataclass(frozen=True)
class Reader:
    """One consumer of a stream: a durable (`kinds` from its filter) or a projection."""

    name: str
    """What it signs its dead letters with."""
    spec: StreamSpec
    kinds: tuple[str, ...]
    dlq_stream: str
    """The stream name its dead letters carry (durables: the full name; projections: key)."""
    durable: str = ""
    schema: str = ""


def durable_readers(stack: Stack) -> list[Reader]:
    found: list[Reader] = []
    for broker in stack.brokers:
        for sub in _subscribers(broker):
            stream = getattr(getattr(sub, "stream", None), "name", None)
            durable = getattr(sub.config, "durable_name", None)
            if not stream or not durable:
                continue
            spec = next(s for s in ALL if s.name(stack.topology) == stream)
            kind = _subject(sub).split(".")[1]
            found.append(Reader(durable, spec, (kind,), stream, durable=durable))
    return found


async def projection_readers(stack: Stack) -> list[Reader]:
    """Every projection that runs in the stack, by the checkpoints it keeps; the subject
    kinds it reads from the projection itself (found by name in the services' modules)."""
    assert stack.pool is not None
    known = {p.name: p for p in _projections()}
    found: list[Reader] = []
    async with stack.pool.acquire() as conn:
        schemas = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'projection_checkpoints'"
        )
        for row in schemas:
            schema = row["table_schema"]
            for cp in await conn.fetch(
                f'SELECT projection, stream FROM "{schema}".projection_checkpoints'
            ):
                name, key = cp["projection"], cp["stream"]
                spec = next(s for s in ALL if s.key == key)
                kinds = dict(getattr(known[name], "kinds", None) or {}).get(key) or spec.kinds
                found.append(Reader(f"projection-{name}", spec, tuple(kinds), key, schema=schema))
    return found


def _projections() -> list[Any]:
    from wacast.runtime.registry import discover
    from wacast.sequence_service.adapters.projection import PrivateTables

    return [r.factory() for r in discover()] + [PrivateTables()]


def _subject(sub: Any) -> str:
    return str(sub.subject).removeprefix("Address('").removesuffix("')")


def _subscribers(broker: NatsBroker) -> list[Any]:
    return list(broker._subscribers)


def samples() -> dict[str, dict[str, Any]]:
    """One valid event payload per subject kind, from the contract's golden examples."""
    golden: dict[str, dict[str, Any]] = json.loads(GOLDEN.read_text())
    by_kind: dict[str, dict[str, Any]] = {}
    for spec in ALL:
        for _, payload in sorted(golden.items()):
            try:
                event = codec(spec).decode(json.dumps(payload).encode())
            except Exception:
                continue
            by_kind.setdefault(type(event).subject_kind, payload)
    return by_kind


def poison(max_payload: int, other: bytes) -> list[tuple[str, bytes]]:
    return [
        ("garbage", b"\x00\xff\xfe not json at all \x80"),
        ("wrong json", b'{"type": "NoSuchEvent", "tenant_id": 7}'),
        ("another stream's event", other),
        ("at max_payload", b'{"type": "' + b"x" * (max_payload - 64) + b'"}'),
    ]


async def dead_letters(stack: Stack) -> list[dict[str, str]]:
    js = stack.nc.jetstream()
    name = stack.topology.stream(DEAD_LETTER_KEY)
    last = (await js.stream_info(name)).state.last_seq
    found = []
    for seq in range(1, last + 1):
        msg = await js.get_msg(name, seq, direct=True)
        found.append({**(msg.headers or {}), "subject": msg.subject})
    return found


async def eventually(check: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        missing = await check()
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: {missing}")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_poison_on_every_consumed_subject_is_dead_lettered_and_consumers_go_on(
    stack: Stack,
) -> None:
    readers = durable_readers(stack) + await projection_readers(stack)
    assert {r.name for r in readers} >= {
        "projection-reports",
        "projection-campaigns_private",
        "projection-sequences_private",
        "sequence-service-leads",
        "campaigns-device-cascade",
    }
    kinds = sorted({kind for r in readers for kind in r.kinds})
    examples = samples()
    js = stack.nc.jetstream()
    tenant = f"poison{uuid.uuid4().hex[:6]}"
    expected: set[tuple[str, str, str]] = set()
    """(dead-letter stream name, reader, original seq)"""
    valid: dict[str, int] = {}
    """subject kind -> the seq of the valid event published after its poison"""
    for kind in kinds:
        spec = BY_KIND[kind]
        other_spec = next(s for s in ALL if s is not spec and s.key != "MESSAGES")
        other = next(
            json.dumps(p).encode()
            for p in examples.values()
            if _decodes(other_spec, p) and not _decodes(spec, p)
        )
        event: Event = codec(spec).decode(json.dumps(examples[kind]).encode())
        event = msgspec.structs.replace(event, tenant_id=tenant)
        subject = event.subject(stack.topology)
        for label, payload in poison(stack.nc.max_payload, other):
            ack = await js.publish(subject, payload)
            for reader in readers:
                if reader.spec is spec and kind in reader.kinds:
                    expected.add((reader.dlq_stream, reader.name, str(ack.seq)))
            assert label
        ack = await js.publish(subject, msgspec.json.encode(event))
        valid[kind] = ack.seq

    async def not_dead_lettered() -> set[tuple[str, str, str]]:
        found = {
            (h.get(ORIGIN_STREAM, ""), h["subject"].rsplit(".", 1)[-1], h.get(ORIGIN_SEQ, ""))
            for h in await dead_letters(stack)
            if h.get(ERROR_HEADER) and h.get(ORIGIN_SUBJECT)
        }
        return expected - found

    await eventually(not_dead_lettered, "poison not dead-lettered")
    cut = [h for h in await dead_letters(stack) if TRUNCATED in h]
    assert cut, "the payload at max_payload travels cut, saying how long it was"
    assert all(int(h[TRUNCATED]) > stack.nc.max_payload - 100 for h in cut)

    async def behind() -> list[str]:
        assert stack.pool is not None
        late = []
        for reader in readers:
            target = max(valid.get(kind, 0) for kind in reader.kinds)
            if reader.durable:
                info = await js.consumer_info(reader.dlq_stream, reader.durable)
                done = info.ack_floor.stream_seq if info.ack_floor else 0
            else:
                async with stack.pool.acquire() as conn:
                    done = await conn.fetchval(
                        f'SELECT seq FROM "{reader.schema}".projection_checkpoints '
                        "WHERE projection = $1 AND stream = $2",
                        reader.name.removeprefix("projection-"),
                        reader.spec.key,
                    )
            if (done or 0) < target:
                late.append(f"{reader.name}/{reader.spec.key} at {done} < {target}")
        return late

    await eventually(behind, "consumers stopped behind the poison")


def _decodes(spec: StreamSpec, payload: dict[str, Any]) -> bool:
    try:
        codec(spec).decode(json.dumps(payload).encode())
    except Exception:
        return False
    return True


async def test_malformed_commands_and_queries_get_a_problem_and_the_servers_go_on(
    stack: Stack,
) -> None:
    subjects = sorted(
        _subject(sub)
        for broker in stack.brokers
        for sub in _subscribers(broker)
        if getattr(sub, "stream", None) is None
        and (".cmd." in _subject(sub) or ".qry." in _subject(sub))
    )
    assert any(".cmd.campaigns." in s for s in subjects)
    assert any(".cmd.tenants." in s for s in subjects)
    golden = json.loads(GOLDEN.read_text())
    event = json.dumps(golden["LeadCreated"]).encode()
    for pattern in subjects:
        subject = pattern.replace(">", "NoSuchCommand").replace("*", "x")
        for label, payload in poison(stack.nc.max_payload, event):
            reply = await stack.nc.request(subject, payload, timeout=10)
            problem = _problem(reply.data)
            if ".cmd." in subject or label != "another stream's event":
                assert problem is not None, (subject, label, reply.data[:200])
            assert problem is None or 400 <= problem.status < 500, (subject, label, problem)
        again = await stack.nc.request(subject, b"{}", timeout=10)
        assert again.data, subject


def _problem(data: bytes) -> Problem | None:
    """The problem a reply carries; None for an answer (a query's response)."""
    try:
        return msgspec.json.decode(data, type=Reply).problem
    except msgspec.ValidationError:
        return None
