"""Deliveries: signed, retried in order, dead after the limit and replayed, isolated per
endpoint, and nothing lost or repeated across a restart."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from wacast.contracts import webhooks as wh
from wacast.contracts.messages import InboundMessageReceived
from wacast.contracts.streams import MESSAGES
from wacast.webhook_service import signing

from .conftest import OTHER, TENANT, Harness, Receiver


def by_message(receiver: Receiver) -> dict[str, list[str]]:
    """Public types each message's events arrived with (successful deliveries only)."""
    seen: dict[str, list[str]] = defaultdict(list)
    for received in receiver.ok:
        body = received.json
        seen[body["data"]["message_id"]].append(body["type"])
    return seen


async def test_a_receiver_on_127_0_0_1_gets_signed_events(service: Harness) -> None:
    receiver = await service.receiver()
    reply = await service.webhook(receiver.url, ["message.sent"])
    secret = reply.data["secret"]
    assert secret.startswith("whsec_")
    await service.message("m1", "sent")
    await service.received(receiver, 1)

    got = receiver.ok[0]
    now = int(time.time())
    assert signing.verify(secret, got.headers, got.body, now)
    assert not signing.verify(secret, got.headers, got.body.replace(b"m1", b"m2"), now)
    assert not signing.verify(signing.new_secret(), got.headers, got.body, now)
    assert not signing.verify(secret, got.headers, got.body, now + 3600)
    body = got.json
    assert body["type"] == "message.sent"
    assert body["tenant_id"] == TENANT
    assert body["id"] == got.id == wh.event_id(MESSAGES.key, 1)
    assert body["data"]["message_id"] == "m1"
    assert body["data"]["wa_message_id"] == "wa-m1"
    assert got.headers["content-type"] == "application/json"


async def test_a_receiver_that_fails_3_times_then_recovers_gets_every_event_once_in_order(
    service: Harness,
) -> None:
    receiver = await service.receiver(fail_first=3)
    reply = await service.webhook(receiver.url)
    for message_id in ("m1", "m2", "m3"):
        await service.message(message_id, "sent")
    for message_id in ("m1", "m2", "m3"):
        await service.message(message_id, "delivered", "read")
    await service.received(receiver, 9)

    assert len([r for r in receiver.got if r.status == 500]) == 3
    ids = [r.id for r in receiver.ok]
    assert len(ids) == len(set(ids)) == 9
    assert by_message(receiver) == {
        m: ["message.sent", "message.delivered", "message.read"] for m in ("m1", "m2", "m3")
    }

    async def all_delivered() -> list[wh.Delivery]:
        found = await service.deliveries(reply.id, "delivered")
        return found if len(found) == 9 else []

    delivered = await service.until(all_delivered, "the log to show 9 delivered")
    assert sum(d.attempts for d in delivered) == 9 + 3


async def test_a_delivery_is_dead_after_the_limit_and_a_replay_delivers_it(
    harness: Harness,
) -> None:
    await harness.start(webhook_max_attempts=3)
    receiver = await harness.receiver(status=503)
    reply = await harness.webhook(receiver.url)
    await harness.message("m1", "sent")

    async def dead() -> list[wh.Delivery]:
        return await harness.deliveries(reply.id, "dead")

    [delivery] = await harness.until(dead, "the delivery to be dead")
    assert delivery.attempts == 3
    assert delivery.last_status_code == 503
    assert len(receiver.got) == 3
    assert await harness.deliveries(reply.id, "pending") == []

    receiver.status = 200
    replayed = await harness.requester.send(
        wh.ReplayWebhookDelivery(tenant_id=TENANT, webhook_id=reply.id, delivery_id=delivery.id)
    )
    assert replayed.ok, replayed
    await harness.received(receiver, 1)
    assert receiver.ok[0].id == receiver.got[0].id == delivery.event_id

    async def delivered() -> list[wh.Delivery]:
        return await harness.deliveries(reply.id, "delivered")

    [done] = await harness.until(delivered, "the replay to be delivered")
    assert (done.attempts, done.replays) == (1, 1)


async def test_a_pending_delivery_cannot_be_replayed(harness: Harness) -> None:
    await harness.start(webhook_retry_base_seconds=30, webhook_retry_max_seconds=30)
    receiver = await harness.receiver(status=500)
    reply = await harness.webhook(receiver.url)
    await harness.message("m1", "sent")

    async def tried() -> list[wh.Delivery]:
        return [d for d in await harness.deliveries(reply.id, "pending") if d.attempts == 1]

    [delivery] = await harness.until(tried, "a first failed try")
    refused = await harness.requester.send(
        wh.ReplayWebhookDelivery(tenant_id=TENANT, webhook_id=reply.id, delivery_id=delivery.id)
    )
    assert refused.problem is not None
    assert refused.problem.status == 409


async def test_a_slow_failing_endpoint_does_not_delay_another_endpoints_deliveries(
    harness: Harness,
) -> None:
    # The slow endpoint holds its first request for longer than the test runs: every
    # delivery to the fast one must get through while that request hangs.
    await harness.start(webhook_timeout_seconds=60.0)
    slow = await harness.receiver(status=500, delay=120.0)
    fast = await harness.receiver()
    await harness.webhook(slow.url)
    await harness.webhook(fast.url)
    for n in range(10):
        await harness.message(f"m{n}", "sent")

    await harness.received(fast, 10, timeout=30)

    async def slow_is_holding_one() -> bool:
        return slow.arrived >= 1

    await harness.until(slow_is_holding_one, "the slow endpoint's first request")
    assert slow.got == [], "the slow endpoint's first request is still unanswered"


async def test_another_tenants_events_and_unsubscribed_types_are_not_delivered(
    service: Harness,
) -> None:
    failed_only = await service.receiver()
    everything = await service.receiver()
    await service.webhook(failed_only.url, ["message.delivered"])
    await service.webhook(everything.url, ["*"])
    await service.message("other", "sent", "delivered", tenant=OTHER)
    await service.message("m1", "sent", "delivered", "read")
    await service.received(everything, 3)
    await service.received(failed_only, 1)
    assert [r.json["type"] for r in failed_only.ok] == ["message.delivered"]
    assert {r.json["tenant_id"] for r in everything.ok} == {TENANT}


async def test_a_deleted_webhook_gets_nothing_more(service: Harness) -> None:
    deleted = await service.receiver()
    control = await service.receiver()
    reply = await service.webhook(deleted.url)
    await service.message("m1", "sent")
    await service.received(deleted, 1)

    gone = await service.requester.send(wh.DeleteWebhook(tenant_id=TENANT, webhook_id=reply.id))
    assert gone.ok, gone
    await service.webhook(control.url)
    await service.message("m1", "delivered", "read")
    await service.received(control, 2)
    assert len(deleted.got) == 1


async def test_a_restart_mid_way_loses_and_duplicates_nothing(harness: Harness) -> None:
    await harness.start()
    receiver = await harness.receiver()
    reply = await harness.webhook(receiver.url)
    for n in range(10):
        await harness.message(f"m{n}", "sent")
    await harness.received(receiver, 10)
    receiver.status = 503  # the endpoint goes down: what follows stays pending
    for n in range(10):
        await harness.message(f"m{n}", "delivered")

    async def tried() -> bool:
        pending = await harness.deliveries(reply.id, "pending")
        return len(pending) == 10 and all(d.attempts >= 1 for d in pending)

    await harness.until(tried, "10 deliveries pending after a failed try")
    await harness.stop()
    for n in range(10):
        await harness.message(f"m{n}", "read")  # while the service is down
    receiver.status = 200
    await harness.start()
    await harness.received(receiver, 30)

    ids = [r.id for r in receiver.ok]
    assert len(ids) == len(set(ids)) == 30
    assert by_message(receiver) == {
        f"m{n}": ["message.sent", "message.delivered", "message.read"] for n in range(10)
    }

    async def logged() -> bool:
        return len(await harness.deliveries(reply.id, "delivered")) == 30

    await harness.until(logged, "the log to show 30 delivered")


async def test_a_try_slower_than_the_timeout_fails_and_the_log_says_why(harness: Harness) -> None:
    await harness.start(webhook_timeout_seconds=0.3, webhook_max_attempts=1)
    receiver = await harness.receiver(delay=1.0)
    reply = await harness.webhook(receiver.url)
    await harness.message("m1", "sent")

    async def dead() -> list[wh.Delivery]:
        return await harness.deliveries(reply.id, "dead")

    [delivery] = await harness.until(dead, "the slow try to fail")
    assert delivery.last_status_code is None
    assert "no answer within 0.3 s" in delivery.last_error


async def test_loopback_is_refused_unless_the_allowlist_names_it(harness: Harness) -> None:
    await harness.start(url_allowlist="")
    receiver = await harness.receiver()
    refused = await harness.requester.send(
        wh.CreateWebhook(tenant_id=TENANT, url=receiver.url, event_types=["*"])
    )
    assert refused.problem is not None
    assert (refused.problem.status, refused.problem.code) == (422, "url_refused")
    metadata = await harness.requester.send(
        wh.CreateWebhook(tenant_id=TENANT, url="http://169.254.169.254/x", event_types=["*"])
    )
    assert metadata.problem is not None
    assert metadata.problem.code == "url_refused"


async def test_a_delivery_whose_source_event_was_erased_is_dead_without_sending_it(
    service: Harness,
) -> None:
    receiver = await service.receiver(status=503, delay=1.0)
    reply = await service.webhook(receiver.url)
    await service.message("m1", "sent")

    async def in_flight() -> bool:
        return receiver.arrived == 1

    await service.until(in_flight, "the first try to reach the receiver")
    js = service.nc.jetstream()  # erased while the first try waits for its answer
    await js.purge_stream(
        MESSAGES.name(service.topology), subject=service.topology.message(TENANT, "m1")
    )

    async def dead() -> list[wh.Delivery]:
        return await service.deliveries(reply.id, "dead")

    [delivery] = await service.until(dead, "the delivery to end dead")
    assert "gone" in delivery.last_error
    assert delivery.attempts == 2
    assert receiver.arrived == 1


async def test_an_inbound_message_arrives_with_its_sender_and_text(service: Harness) -> None:
    receiver = await service.receiver()
    await service.webhook(receiver.url, ["message.inbound"])
    await service.append(
        InboundMessageReceived(
            tenant_id=TENANT,
            occurred_at=datetime.now(UTC),
            inbound_id="i1",
            device_id="d1",
            lead_id="lead-1",
            contact_key="p1",
            sender="+14155550100",
            text="Is the sale still on?",
        )
    )
    await service.received(receiver, 1)
    body = receiver.ok[0].json
    assert body["type"] == "message.inbound"
    assert body["data"]["sender"] == "+14155550100"
    assert body["data"]["text"] == "Is the sale still on?"
    assert body["data"]["lead_id"] == "lead-1"
