"""The dead-letter stream: where a message that cannot be decoded or keeps failing goes.

The original payload is kept byte for byte with its headers, plus where it came from and why
it failed, so an operator can inspect and replay it. The consumer that sent it goes on. A
payload too big to travel with the dead letter's headers (it was near the server's
`max_payload`) is cut to fit, and `Wacast-Truncated` says how long it was.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import Counter

from wacast.contracts.streams import DEAD_LETTER_KEY
from wacast.contracts.subjects import Topology

DEAD_LETTERS = Counter(
    "wacast_dead_letters_total", "Messages sent to the dead-letter stream", ["stream", "consumer"]
)

ERROR_HEADER = "Wacast-Error"
ORIGIN_SUBJECT = "Wacast-Original-Subject"
ORIGIN_STREAM = "Wacast-Original-Stream"
ORIGIN_SEQ = "Wacast-Original-Seq"
TRUNCATED = "Wacast-Truncated"
MAX_ERROR_CHARS = 2000
HEADER_ROOM = 256
"""Bytes kept free under `max_payload` for the header block's framing."""


class DeadLetters:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.topology = topology
        self.stream = topology.stream(DEAD_LETTER_KEY)

    async def ensure(self, replicas: int = 1) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[self.topology.all_of("dlq")],
            description="Messages that failed to decode or kept failing, with their error",
            num_replicas=replicas,
            allow_direct=True,
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def send(
        self,
        *,
        stream: str,
        consumer: str,
        subject: str,
        seq: int,
        data: bytes,
        headers: dict[str, str] | None,
        error: BaseException | str,
    ) -> None:
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        hdrs = {k: v for k, v in (headers or {}).items() if not k.startswith("Nats-")}
        hdrs.update(
            {
                ERROR_HEADER: reason[:MAX_ERROR_CHARS].replace("\r", " ").replace("\n", " "),
                ORIGIN_SUBJECT: subject,
                ORIGIN_STREAM: stream,
                ORIGIN_SEQ: str(seq),
                "Nats-Msg-Id": f"dlq:{stream}:{consumer}:{seq}:{subject}"[:200],
            }
        )
        room = self.nc.max_payload - HEADER_ROOM - sum(len(k) + len(v) + 4 for k, v in hdrs.items())
        if len(data) > room:
            hdrs[TRUNCATED] = str(len(data))
            data = data[: max(0, room - len(TRUNCATED) - 24)]
        await self.js.publish(self.topology.dead_letter(stream, consumer), data, headers=hdrs)
        DEAD_LETTERS.labels(stream, consumer).inc()
