"""Every stored event as JSON Lines, one stream after another, each in stream order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from wacast.cli.commands_common import CliError
from wacast.cli.commands_lines import encode_line
from wacast.cli.progress import Tracker
from wacast.contracts.streams import ALL, StreamSpec
from wacast.contracts.subjects import Topology

CHUNK = 1000
IDLE_SECONDS = 10.0


@dataclass(frozen=True)
class StreamState:
    messages: int
    last_seq: int


async def stream_states(js: JetStreamContext, topology: Topology) -> dict[str, StreamState]:
    """Count and last sequence of every stream now (a missing stream is empty)."""
    states: dict[str, StreamState] = {}
    for spec in ALL:
        try:
            info = await js.stream_info(spec.name(topology))
        except NotFoundError:
            states[spec.key] = StreamState(0, 0)
            continue
        states[spec.key] = StreamState(int(info.state.messages), int(info.state.last_seq))
    return states


class Stalled(CliError):
    """The consumer stopped delivering before the end: never mistake that for the end."""


async def read_stream(
    js: JetStreamContext,
    topology: Topology,
    spec: StreamSpec,
    *,
    until: int,
    headers_only: bool = False,
) -> AsyncIterator[list[Msg]]:
    """Chunks of a stream's messages with sequence <= `until`, in order.

    An ordered push consumer (ephemeral, unacknowledged, flow-controlled, recreated by the
    client on a gap): nothing to clean up or for a running system to notice, and in nats-py
    twice as fast as pull fetches (which wait on each message separately).
    """
    if until <= 0:
        return
    buffer: list[Msg] = []
    ready, drained = asyncio.Event(), asyncio.Event()
    state: dict[str, Any] = {"finished": False, "last": 0, "error": None}

    async def take(msg: Msg) -> None:
        try:
            seq = msg.metadata.sequence.stream
            if state["finished"] or seq > until:
                state["finished"] = True
            else:
                buffer.append(msg)
                state["last"] = seq
                state["finished"] = seq == until or msg.metadata.num_pending == 0
        except Exception as exc:  # the client would swallow it
            state["error"], state["finished"] = exc, True
        if state["finished"] or len(buffer) >= CHUNK:
            ready.set()
        if len(buffer) >= 4 * CHUNK:  # the writer is slow: hold the flow-controlled consumer
            drained.clear()
            await drained.wait()

    sub = await js.subscribe(
        f"{topology.prefix}.>",
        stream=spec.name(topology),
        cb=take,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        headers_only=headers_only or None,
    )
    try:
        while True:
            try:
                await asyncio.wait_for(ready.wait(), IDLE_SECONDS)
            except TimeoutError:
                if not buffer:
                    await _check_end(js, topology, spec, state["last"], until)
                    return
            ready.clear()
            chunk = buffer[:]
            buffer.clear()
            drained.set()
            if state["error"] is not None:
                raise state["error"]
            if chunk:
                yield chunk
            if state["finished"]:
                return
    finally:
        drained.set()
        # The connection may be gone already; the consumer then expires by itself.
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _check_end(
    js: JetStreamContext, topology: Topology, spec: StreamSpec, last: int, until: int
) -> None:
    """Nothing came for a while: fine if nothing is left up to `until`, an error if it is."""
    try:
        left = await js.get_msg(spec.name(topology), seq=last + 1, next=True)
    except NotFoundError:
        return
    if int(left.seq or 0) <= until:
        raise Stalled(f"reading {spec.name(topology)} stalled after sequence {last}")


async def export_events(
    nc: Client,
    topology: Topology,
    out: BinaryIO,
    tracker: Tracker,
    until: dict[str, int] | None = None,
) -> dict[str, int]:
    """Write every stream up to `until` (default: its last sequence now); returns counts."""
    js = nc.jetstream()
    states = await stream_states(js, topology)
    skip = len(topology.prefix) + 1
    written: dict[str, int] = {}
    for spec in ALL:
        state = states[spec.key]
        target = state.last_seq if until is None else until.get(spec.key, 0)
        task = tracker.task(f"export {spec.key}", total=state.messages)
        written[spec.key] = 0
        if not state.messages:
            continue
        async for batch in read_stream(js, topology, spec, until=target):
            out.write(b"".join(encode_line(spec.key, msg, skip) for msg in batch))
            written[spec.key] += len(batch)
            task.advance(len(batch))
    out.flush()
    return written
