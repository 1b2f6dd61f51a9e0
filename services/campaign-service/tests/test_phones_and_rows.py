"""Phones normalise to E.164 with the tenant's region; CSV rows become lead details."""

from __future__ import annotations

import pytest

from wacast.campaign_service.domain.lead_row import (
    BadFile,
    RowDefaults,
    RowRefused,
    columns_of,
    contact_of,
)
from wacast.campaign_service.domain.phone import InvalidPhone, normalize_phone

DEFAULTS = RowDefaults(region="BR", status="prospect", tags=["fair"], device_id="", devices={"d1"})


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("11 98765-4321", "BR", "+5511987654321"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("0049 30 901820", "FR", "+4930901820"),
    ],
)
def test_phones_become_e164_read_with_the_default_region(raw: str, region: str, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("hello", "not a phone number"),
        ("+1 415", "too short"),
        ("+999 1234567", "country code"),
    ],
)
def test_an_invalid_phone_is_refused_with_its_reason_and_without_the_number(
    raw: str, reason: str
) -> None:
    with pytest.raises(InvalidPhone) as refused:
        normalize_phone(raw, "US")
    assert reason in str(refused.value)
    assert not raw or raw not in str(refused.value)


def test_a_row_takes_its_columns_and_the_imports_defaults() -> None:
    columns = columns_of(["Name", "Phone", "Status", "Tags", "City", "Device"])
    contact = contact_of(
        ["Ana", "11 98765-4321", "Customer", "vip; sp", "Campinas", ""], columns, DEFAULTS
    )
    assert contact.phone == "+5511987654321"
    assert contact.status == "customer"
    assert list(contact.tags) == ["fair", "vip", "sp"]
    assert contact.attributes == {"city": "Campinas"}
    assert contact.device_id == ""


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (["Ana", "", "", ""], "phone is empty"),
        (["Ana", "123", "", ""], "invalid phone"),
        (["Ana", "11 98765-4321", "vip", ""], "status must be prospect or customer"),
        (["Ana", "11 98765-4321", "", "d9"], "unknown device"),
    ],
)
def test_a_bad_row_is_refused_with_a_reason(fields: list[str], reason: str) -> None:
    columns = columns_of(["name", "phone", "status", "device"])
    with pytest.raises(RowRefused, match=reason):
        contact_of(fields, columns, DEFAULTS)


def test_a_file_without_a_phone_column_is_refused() -> None:
    with pytest.raises(BadFile) as refused:
        columns_of(["name", "email"])
    assert refused.value.reason == "no_phone_column"


def test_a_file_without_a_header_row_does_not_repeat_its_first_lead() -> None:
    with pytest.raises(BadFile) as refused:
        columns_of(["+14155550101", "Ana Lima"])
    assert refused.value.reason == "no_phone_column"
    assert "4155550101" not in refused.value.detail
    assert "Ana" not in refused.value.detail
