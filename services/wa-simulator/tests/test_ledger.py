"""The ledger: duplicate rules, gap statistics, in-flight maxima, listing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wacast.wa_simulator.ledger import Entry, Ledger

AT = datetime(2026, 1, 1, tzinfo=UTC)


def record(ledger: Ledger, t: float, **fields: Any) -> Entry:
    values: dict[str, Any] = {
        "device_id": "d1",
        "to": "+4915100000001",
        "wa_message_id": f"W{len(ledger.entries)}",
        "kind": "text",
        "text": "hello",
        "media_len": 0,
        "media_sha256": "",
        "origin_message_id": "",
        "campaign_id": "",
        "at": AT,
        "t": t,
    }
    values.update(fields)
    return ledger.record(**values)


def test_the_same_origin_message_id_twice_is_a_duplicate() -> None:
    ledger = Ledger()
    assert not record(ledger, 0, origin_message_id="m1").duplicate
    assert record(ledger, 1, origin_message_id="m1", text="other text").duplicate
    assert not record(ledger, 2, origin_message_id="m2").duplicate
    stats = ledger.stats()
    assert (stats["received"], stats["unique"], stats["duplicates"]) == (3, 2, 1)


def test_same_device_recipient_and_content_within_a_campaign_is_a_duplicate() -> None:
    ledger = Ledger()
    assert not record(ledger, 0, campaign_id="c1", origin_message_id="a").duplicate
    assert record(ledger, 1, campaign_id="c1", origin_message_id="b").duplicate
    # another campaign, another recipient, another device or other content: not duplicates
    assert not record(ledger, 2, campaign_id="c2", origin_message_id="c").duplicate
    assert not record(ledger, 3, campaign_id="c1", to="+4915100000002").duplicate
    assert not record(ledger, 4, campaign_id="c1", device_id="d2").duplicate
    assert not record(ledger, 5, campaign_id="c1", text="hello!").duplicate
    assert not record(ledger, 6, campaign_id="c1", kind="image", media_sha256="ab").duplicate
    assert record(ledger, 7, campaign_id="c1", kind="image", media_sha256="ab").duplicate
    assert not record(ledger, 8, campaign_id="c1", kind="image", media_sha256="cd").duplicate
    assert ledger.duplicates == 2


def test_without_a_campaign_only_the_origin_rule_applies() -> None:
    ledger = Ledger()
    record(ledger, 0)
    assert not record(ledger, 1).duplicate


def test_gaps_are_per_device_and_summarised_overall() -> None:
    ledger = Ledger()
    for t in (0.0, 10.0, 25.0):
        record(ledger, t, device_id="a")
    for t in (5.0, 9.0):
        record(ledger, t, device_id="b")
    record(ledger, 7.0, device_id="c")
    stats = ledger.stats()
    assert stats["gaps"]["a"] == {"count": 2, "min": 10.0, "max": 15.0, "mean": 12.5}
    assert stats["gaps"]["b"] == {"count": 1, "min": 4.0, "max": 4.0, "mean": 4.0}
    assert "c" not in stats["gaps"]  # one send, no gap
    assert (stats["gap_min"], stats["gap_max"]) == (4.0, 15.0)
    assert stats["gaps_overall"]["count"] == 3
    assert [e.gap for e in ledger.select("a")] == [None, 10.0, 15.0]


def test_in_flight_maximum_per_device() -> None:
    ledger = Ledger()
    for n in (1, 2, 1, 1):
        ledger.observe_in_flight("a", n)
    ledger.observe_in_flight("b", 1)
    stats = ledger.stats()
    assert stats["in_flight_max"] == {"a": 2, "b": 1}
    assert stats["in_flight_max_overall"] == 2


def test_select_pages_by_sequence_and_filters_by_device_and_reset_clears() -> None:
    ledger = Ledger()
    for i in range(10):
        record(ledger, float(i), device_id="a" if i % 2 else "b", origin_message_id=str(i))
    page = ledger.select(limit=4)
    assert [e.seq for e in page] == [1, 2, 3, 4]
    assert [e.seq for e in ledger.select(after=page[-1].seq, limit=4)] == [5, 6, 7, 8]
    assert [e.origin_message_id for e in ledger.select("a", limit=3)] == ["1", "3", "5"]
    ledger.reset()
    assert ledger.stats()["received"] == 0
    assert not record(ledger, 0, origin_message_id="1").duplicate
