"""Subjects, partitions and streams: names every process must agree on."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable

import pytest

from wacast.contracts import streams
from wacast.contracts.subjects import PARTITIONS, Topology, check_token, partition_of

TOPOLOGY = Topology("wacast")


def test_partition_of_is_crc32_and_stable_across_processes() -> None:
    pinned = {"dev-1": 22, "dev-2": 44, "device_0001": 30, "a": 3}
    assert {device: partition_of(device) for device in pinned} == pinned
    assert partition_of("dev-1") == zlib.crc32(b"dev-1") % PARTITIONS
    assert PARTITIONS == 64


@pytest.mark.parametrize(
    "bad",
    ["", "a.b", "*", ">", "a*", "a>", "a b", "tab\there", "abc\n", "é", "x" * 129],
)
def test_check_token_refuses_what_could_change_a_subjects_shape(bad: str) -> None:
    with pytest.raises(ValueError, match="must be 1-128 characters"):
        check_token(bad)


def test_check_token_accepts_plain_ids() -> None:
    assert check_token("dev_01-A") == "dev_01-A"
    assert check_token("x" * 128) == "x" * 128


def test_topology_builds_the_expected_subjects() -> None:
    t = TOPOLOGY
    assert t.device("t1", "dev-1") == "wacast.device.t1.dev-1"
    assert t.lead("t1", "l1") == "wacast.lead.t1.l1"
    assert t.lead_phone("t1", "pk") == "wacast.leadphone.t1.pk"
    assert t.lead_import("t1", "i1") == "wacast.leadimport.t1.i1"
    assert t.media("t1", "m1") == "wacast.media.t1.m1"
    assert t.campaign("t1", "c1") == "wacast.campaign.t1.c1"
    assert t.sequence("t1", "s1") == "wacast.sequence.t1.s1"
    assert t.enrollment("t1", "e1") == "wacast.enrollment.t1.e1"
    assert t.tenant("t1") == "wacast.tenant.t1"
    assert t.api_key("k1") == "wacast.apikey.k1"
    assert t.send_request("t1", "dev-1", "m1") == "wacast.sendreq.22.t1.dev-1.m1"
    assert t.send_requests_of_partition(22) == "wacast.sendreq.22.>"
    assert t.send_requests_of_device("t1", "dev-1") == "wacast.sendreq.22.t1.dev-1.*"
    assert t.lane("t1", "dev-1") == "wacast.lane.22.t1.dev-1"
    assert t.lanes_of_partition(22) == "wacast.lane.22.>"
    assert t.lane_checkpoint("t1", "dev-1") == "wacast.lanecp.22.t1.dev-1"
    assert t.message("t1", "m1") == "wacast.msg.t1.m1"
    assert t.send_control("t1", "campaign", "c1") == "wacast.sendctl.t1.campaign.c1"
    assert t.fanout("t1", "c1") == "wacast.fanout.t1.c1"
    assert t.command("campaigns", "TriggerCampaign") == "wacast.cmd.campaigns.TriggerCampaign"
    assert t.query("campaign_status") == "wacast.qry.campaign_status"
    assert t.live("t1") == "wacast.live.t1"
    assert t.all_of("lead") == "wacast.lead.>"


def test_a_namespace_prefixes_streams_buckets_and_subjects() -> None:
    t = Topology("wacast-test")
    assert t.stream("DEVICES") == "WACAST_TEST_DEVICES"
    assert t.bucket("media") == "wacast_test_media"
    assert t.device("t1", "d1") == "wacast-test.device.t1.d1"
    with pytest.raises(ValueError, match="namespace"):
        Topology("wacast.test")


@pytest.mark.parametrize(
    "build",
    [
        lambda t: t.device("t.1", "d1"),
        lambda t: t.lane("t1", "d*"),
        lambda t: t.lane("t>", "d1"),
        lambda t: t.send_requests_of_device("t 1", "d1"),
        lambda t: t.send_request("t1", "d1", "m.1"),
        lambda t: t.live("*"),
        lambda t: t.api_key("k.1"),
    ],
)
def test_every_subject_builder_refuses_unsafe_ids(build: Callable[[Topology], str]) -> None:
    with pytest.raises(ValueError, match="must be 1-128 characters"):
        build(TOPOLOGY)


def test_no_two_streams_hold_overlapping_subjects() -> None:
    for a, b in itertools.combinations(streams.ALL, 2):
        assert not set(a.kinds) & set(b.kinds), f"{a.key} and {b.key} share a kind"
    subjects = [s for spec in streams.ALL for s in spec.subjects(TOPOLOGY)]
    assert len(subjects) == len(set(subjects))
    assert all(s.count(".") == 2 and s.endswith(".>") for s in subjects)


def test_no_stream_captures_request_reply_or_ephemeral_subjects() -> None:
    kinds = {kind for spec in streams.ALL for kind in spec.kinds}
    assert not kinds & {"cmd", "qry", "ctl", "live", "dlq"}


def test_every_event_subject_kind_maps_to_exactly_one_stream() -> None:
    for spec in streams.ALL:
        for cls in streams.codec(spec).event_types:
            holders = [other.key for other in streams.ALL if cls.subject_kind in other.kinds]
            assert holders == [spec.key], f"{cls.__name__} ({cls.subject_kind!r}): {holders}"
            assert streams.BY_KIND[cls.subject_kind] is spec


def test_every_subject_kind_of_a_stream_has_events() -> None:
    for spec in streams.ALL:
        used = {cls.subject_kind for cls in streams.codec(spec).event_types}
        assert used == set(spec.kinds), spec.key


def test_stream_names_are_found_back_from_their_topology() -> None:
    t = Topology("wacast-test")
    for spec in streams.ALL:
        assert streams.spec_of_stream_name(t, spec.name(t)) is spec
    with pytest.raises(KeyError):
        streams.spec_of_stream_name(t, "WACAST_DEVICES")


def test_stream_configs_are_accepted_by_the_nats_client() -> None:
    api = pytest.importorskip("nats.js.api")
    for spec in streams.ALL:
        config = api.StreamConfig(**spec.config(TOPOLOGY, replicas=3))
        wire = config.as_dict()
        assert wire["subjects"] == spec.subjects(TOPOLOGY)
        assert wire["num_replicas"] == 3
        assert wire["duplicate_window"] == 120 * 10**9
        assert wire["allow_atomic"] is True
        assert wire["deny_purge"] is False, "erasure purges subjects"
