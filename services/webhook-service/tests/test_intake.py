"""Intake: source events are taken in batches, their deliveries queued in atomic batches in
source order, and a batch taken again queues (and sends) nothing twice."""

from __future__ import annotations

from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from wacast.contracts import webhooks as wh
from wacast.contracts.streams import MESSAGES
from wacast.webhook_service.intake import durable_name

from .conftest import Harness
from .test_delivery import by_message


async def test_source_events_taken_again_from_the_start_queue_and_send_nothing_twice(
    harness: Harness,
) -> None:
    await harness.start()
    receiver = await harness.receiver()
    reply = await harness.webhook(receiver.url, ["message.sent"])
    for n in range(20):
        await harness.message(f"m{n}", "sent")
    await harness.received(receiver, 20)
    await harness.stop()
    js = harness.nc.jetstream()
    stream = MESSAGES.name(harness.topology)
    await js.delete_consumer(stream, durable_name("msg"))  # its cursor lost: all comes again

    await harness.start()

    async def taken_again() -> ConsumerInfo | None:
        try:
            info = await js.consumer_info(stream, durable_name("msg"))
        except NotFoundError:  # not created again yet
            return None
        done = info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered
        return info if done and info.delivered.stream_seq >= 20 else None

    again = await harness.until(taken_again, "the recreated consumer to take every event again")
    assert again.num_redelivered == 0  # the refused batch was appended without what existed

    async def settled() -> list[wh.Delivery]:
        found = await harness.deliveries(reply.id)
        return found if found and all(d.status == "delivered" for d in found) else []

    logged = await harness.until(settled, "the log to settle")
    assert len(logged) == 20
    assert len(receiver.ok) == len({r.id for r in receiver.ok}) == 20


async def test_more_than_1000_deliveries_of_one_fetch_are_queued_in_source_order(
    harness: Harness,
) -> None:
    await harness.start()
    first, second = await harness.receiver(), await harness.receiver()
    await harness.webhook(first.url)
    await harness.webhook(second.url)
    await harness.stop()  # what follows is fetched at once: 520 events, 1,040 deliveries
    for n in range(510):
        await harness.message(f"m{n}", "sent")
    for n in range(10):
        await harness.message(f"m{n}", "delivered")

    await harness.start()
    await harness.received(first, 520, timeout=120)
    await harness.received(second, 520, timeout=120)

    for receiver in (first, second):
        assert len({r.id for r in receiver.ok}) == len(receiver.ok) == 520
        seen = by_message(receiver)
        assert all(seen[f"m{n}"] == ["message.sent", "message.delivered"] for n in range(10))
        assert all(seen[f"m{n}"] == ["message.sent"] for n in range(10, 510))
