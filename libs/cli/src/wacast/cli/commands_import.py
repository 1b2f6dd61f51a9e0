"""Import of a validated export file, in order, each event stored once.

Each line goes to `<prefix>.<subject>` with `Nats-Msg-Id: import:<stream>:<seq>`, in atomic
batches of up to 500 consecutive lines of one stream. Payloads are stored byte for byte as
exported (an old schema version stays old; upcasting is the reader's job). Re-running an
import stores nothing twice: ids already in the target are skipped, whatever the age of the
earlier run, and the server's duplicate window covers a concurrent one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import msgspec
from nats.aio.client import Client

from wacast.cli.commands_common import CliError
from wacast.cli.commands_lines import LineError, Plan, records
from wacast.cli.export import read_stream, stream_states
from wacast.cli.progress import Tracker
from wacast.contracts.base import Event
from wacast.contracts.streams import ALL, BY_KEY
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import MSG_ID, Append, AppendFailed, DuplicateInBatch, EventStore
from wacast.runtime.provisioning import ensure_streams

BATCH = 500


async def imported_ids(nc: Client, topology: Topology, streams: list[str]) -> set[str]:
    """`Nats-Msg-Id`s of earlier imports stored in `streams` (read from headers only)."""
    js = nc.jetstream()
    states = await stream_states(js, topology)
    found: set[str] = set()
    for key in streams:
        until = states[key].last_seq
        async for batch in read_stream(js, topology, BY_KEY[key], until=until, headers_only=True):
            for msg in batch:
                msg_id = (msg.headers or {}).get(MSG_ID, "")
                if msg_id.startswith("import:"):
                    found.add(msg_id)
    return found


@dataclass
class Outcome:
    stored: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    """Lines whose id a previous import stored already."""


def refusal(topology: Topology, held: dict[str, int]) -> str:
    counts = ", ".join(f"{key} {n}" for key, n in held.items())
    return (
        f"namespace {topology.prefix!r} is not empty ({counts}): imported events would be "
        "appended after what is there, mixing two histories. Import into an empty namespace, "
        "or pass --force (lines an earlier import stored are skipped, the rest appended)"
    )


async def _append(store: EventStore, items: list[Append]) -> int:
    """Append one batch; returns how many were new."""
    try:
        await store.append_batch(items)
        return len(items)
    except DuplicateInBatch:
        # Part of it is stored already (a concurrent or interrupted run within the duplicate
        # window): a single publish skips a known id, so go one by one.
        fresh = 0
        for item in items:
            fresh += not (await store.append_batch([item])).duplicate
        return fresh


async def import_events(
    nc: Client,
    topology: Topology,
    path: Path,
    plan: Plan,
    tracker: Tracker,
    *,
    force: bool = False,
    replicas: int = 1,
) -> Outcome:
    """Append a validated file (see `validate`) to the namespace of `topology`.

    Missing streams are created with `replicas` (an existing stream is updated to it, so it
    must be the installation's `WACAST_STREAM_REPLICAS`).
    """
    states = await stream_states(nc.jetstream(), topology)
    held = {key: state.messages for key, state in states.items() if state.messages}
    if held and not force:
        raise CliError(refusal(topology, held), 3)
    await ensure_streams(nc, topology, replicas)
    done = await imported_ids(nc, topology, sorted(held))
    store = EventStore(nc, topology)
    task = tracker.task("import", total=sum(plan.counts.values()))
    outcome = Outcome(stored={spec.key: 0 for spec in ALL})
    group: list[Append] = []
    key, first = "", 0

    async def flush() -> None:
        if group:
            outcome.stored[key] += await _append(store, group)
            task.advance(len(group))
            group.clear()

    try:
        for record in records(path):
            if record.msg_id in done:
                outcome.skipped += 1
                task.advance()
                continue
            if group and (record.stream != key or len(group) >= BATCH):
                await flush()
            if not group:
                key, first = record.stream, record.number
            # The payload goes out byte for byte: msgspec encodes a `Raw` verbatim.
            event = cast(Event, msgspec.Raw(record.payload))
            subject = f"{topology.prefix}.{record.subject}"
            group.append(Append(subject, event, record.msg_id, headers=record.headers))
        await flush()
    except LineError as exc:
        raise CliError(f"the file changed while importing: {exc}", 2) from None
    except AppendFailed as exc:
        raise CliError(
            f"import stopped at line {first}: {exc}. Lines before it are stored; run it again "
            "with --force to import the rest (stored lines are skipped)"
        ) from None
    return outcome
