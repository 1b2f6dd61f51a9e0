"""A lead's page in Debian's chromium against the embedded stack: reached from the leads
list, its conversation newest last, a reply showing up while the page is open, opting the
lead out and in again; and the settings page saving opt-out keywords and the time zone."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Stack, create_leads, shot, until, visit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def reply(stack: Stack, sender: str, device: dict[str, Any], text: str) -> None:
    """The contact writes to the device, through the simulator."""
    httpx.post(
        f"{stack.sim}/sim/v1/inbound",
        json={"from": sender, "to": device["phone"], "text": text},
        timeout=10,
    ).raise_for_status()


def test_the_lead_page_shows_the_conversation_newest_last_and_follows_replies(
    page: Page, stack: Stack, device: dict[str, Any]
) -> None:
    phone = "+447911100301"
    [lead_id] = create_leads(stack, device["id"], [(phone, "Talia")], ["talk"])
    with stack.api() as api:
        created = api.post(
            "/campaigns",
            json={
                "name": "Talk to Talia",
                "audience": {"tags": ["talk"]},
                "message": {"text": "Hi {name}, news for you!"},
                "pacing": {"min_seconds": 0, "max_seconds": 0},
            },
        )
        assert created.status_code == 201, created.text

        def sent() -> bool:
            items = api.get(f"/leads/{lead_id}/conversation").json()["items"]
            return any(e["direction"] == "outbound" and e["status"] != "pending" for e in items)

        until(sent, "the campaign message to be handed to the network", timeout=60)
    reply(stack, phone, device, "Tell me more")

    visit(page, "/app/leads")
    page.get_by_role("link", name="Lead page of Talia").click()
    expect(page).to_have_url(re.compile(rf"/app/leads/{lead_id}$"))
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    chat = page.locator("#chat li")
    expect(chat.last).to_contain_text("Tell me more", timeout=30_000)
    expect(chat.first).to_contain_text("Hi Talia, news for you!")
    expect(chat.first).to_have_attribute("data-direction", "outbound")
    expect(page.locator("#l-facts")).to_contain_text(phone)

    reply(stack, phone, device, "Is there a discount?")
    expect(chat.last).to_contain_text("Is there a discount?", timeout=30_000)
    expect(chat.last).to_have_attribute("data-direction", "inbound")
    expect(chat).to_have_count(3)
    shot(page, "lead")

    page.get_by_role("button", name="Opt out").click()
    page.locator("dialog[open]").get_by_role("button", name="Opt out").click()
    expect(page.locator("#l-opted-out")).to_be_visible()
    page.get_by_role("button", name="Opt in again").click()
    expect(page.locator("#l-opted-out")).to_have_count(0)
    expect(page.get_by_role("button", name="Opt out")).to_be_visible()


def test_an_unknown_lead_says_so(page: Page) -> None:
    visit(page, "/app/leads/lead_does_not_exist")
    expect(page.get_by_role("heading", name="No such lead")).to_be_visible()


def test_the_settings_page_saves_keywords_and_time_zone_and_shows_a_refusal(page: Page) -> None:
    visit(page, "/app/settings")
    form = page.locator("#settings-form")
    expect(form.get_by_label("Time zone")).to_have_value("UTC")
    form.get_by_label("Time zone").fill("Mars/Olympus")
    form.get_by_role("button", name="Save settings").click()
    expect(form.get_by_role("alert")).to_contain_text("timezone")

    form.get_by_label("Time zone").fill("Europe/Madrid")
    form.get_by_label("Opt-out keywords").fill("STOP, BASTA\nparar")
    form.get_by_label("Daily cap per device").fill("300")
    form.get_by_role("button", name="Save settings").click()
    expect(form.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("Settings saved")

    visit(page, "/app/settings")
    expect(form.get_by_label("Time zone")).to_have_value("Europe/Madrid")
    expect(form.get_by_label("Opt-out keywords")).to_have_value("STOP, BASTA, parar")
    expect(form.get_by_label("Daily cap per device")).to_have_value("300")
