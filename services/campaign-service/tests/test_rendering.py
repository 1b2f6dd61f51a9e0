"""Placeholders render per lead; missing values are empty or take their default."""

from __future__ import annotations

from wacast.campaign_service.domain.render import personalise
from wacast.contracts.values import MessageContent

ANA = {"name": "Ana", "phone": "+5511987654321", "attributes": {"city": "Campinas"}}
NOBODY: dict[str, object] = {"name": "", "phone": "+14155550100", "attributes": {}}


def test_name_phone_and_attributes_are_rendered() -> None:
    text = "Hi {name} ({phone}), see you in {attributes.city}!"
    rendered = personalise(MessageContent(text=text), **ANA)  # type: ignore[arg-type]
    assert rendered == MessageContent(text="Hi Ana (+5511987654321), see you in Campinas!")


def test_missing_fields_render_empty_or_as_their_default() -> None:
    text = "Hi {name|there}, from {attributes.city|your city}{attributes.zone}!"
    rendered = personalise(MessageContent(text=text), **NOBODY)  # type: ignore[arg-type]
    assert rendered is not None
    assert rendered.text == "Hi there, from your city!"


def test_unknown_braces_stay_as_written() -> None:
    rendered = personalise(MessageContent(text="{greeting} {name} :-{"), **ANA)  # type: ignore[arg-type]
    assert rendered is not None
    assert rendered.text == "{greeting} Ana :-{"


def test_a_text_that_renders_blank_without_media_is_no_message() -> None:
    assert personalise(MessageContent(text="{name}"), **NOBODY) is None  # type: ignore[arg-type]
    with_media = personalise(MessageContent(text="{name}", media_id="m1"), **NOBODY)  # type: ignore[arg-type]
    assert with_media == MessageContent(text="", media_id="m1")
