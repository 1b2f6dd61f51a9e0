"""Placeholders are rendered per lead; everything else in braces stays as written."""

from __future__ import annotations

from wacast.contracts.templates import render


def test_name_phone_and_attributes_are_replaced() -> None:
    text = "Hi {name} ({phone}), see you in {attributes.city}{attributes.missing}!"
    rendered = render(text, name="Ana", phone="+5511987654321", attributes={"city": "Campinas"})
    assert rendered == "Hi Ana (+5511987654321), see you in Campinas!"


def test_unknown_placeholders_and_lone_braces_stay() -> None:
    text = "{greeting} {name} :-{ {}"
    assert render(text, name="Ana", phone="", attributes={}) == "{greeting} Ana :-{ {}"


def test_a_missing_value_takes_the_default_after_the_bar() -> None:
    text = "Hi {name|friend}, from {attributes.city|your city} ({attributes.zone|})"
    assert render(text, name="", phone="", attributes={}) == "Hi friend, from your city ()"
    assert render(text, name="Ana", phone="", attributes={"city": "Rio"}) == ("Hi Ana, from Rio ()")
