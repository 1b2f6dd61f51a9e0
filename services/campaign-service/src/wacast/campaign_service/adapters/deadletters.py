"""Erasure in the dead-letter stream: dead letters keep their payloads byte for byte, so an
erased lead's events that once failed there would keep its phone. `forget` reads the stream
once (an ordered consumer; it holds only what failed, so it is small) and deletes each
message that names the lead."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from wacast.contracts.streams import DEAD_LETTER_KEY
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import ORIGIN_SUBJECT

Named = Callable[[Mapping[str, str], bytes], bool]
READ_TIMEOUT = 5.0


async def forget(js: JetStreamContext, topology: Topology, named: Named) -> int:
    """Delete the dead letters for which `named(headers, data)` holds; how many."""
    stream = topology.stream(DEAD_LETTER_KEY)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return 0
    last = int(info.state.last_seq or 0)
    if not info.state.messages:
        return 0
    sub = await js.subscribe(topology.all_of("dlq"), stream=stream, ordered_consumer=True)
    deleted = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=READ_TIMEOUT)
            except NatsTimeout:
                return deleted  # nothing more (messages deleted meanwhile)
            seq = msg.metadata.sequence.stream
            if named(msg.headers or {}, msg.data or b""):
                await js.delete_msg(stream, seq)
                deleted += 1
            if seq >= last:
                return deleted
    finally:
        await sub.unsubscribe()


def naming(tenant_id: str, tokens: set[str], phones: set[str], lead_id: str) -> Named:
    """A dead letter names the lead if its original subject is one of the lead's (last token
    in `tokens`: the lead id, its phone keys, its message ids), or its payload holds one of
    its phones or its id as a `lead_id`."""
    needles = [p.encode() for p in phones] + [f'"lead_id":"{lead_id}"'.encode()]

    def named(headers: Mapping[str, str], data: bytes) -> bool:
        subject = headers.get(ORIGIN_SUBJECT, "")
        if f".{tenant_id}." in subject and subject.rsplit(".", 1)[-1] in tokens:
            return True
        return any(n in data for n in needles)

    return named
