"""The webhooks page in Debian's chromium against the embedded stack: an endpoint on
127.0.0.1 is added (its secret shown once), an inbound message reaches it signed, a delivery
that died shows in the log filtered by status and is replayed from there, and the endpoint
is deleted."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import Stack, shot, visit
from wacast.webhook_service import signing

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that keeps what it got and answers `status`."""

    def __init__(self) -> None:
        self.status = 500
        self.got: list[tuple[dict[str, str], bytes, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.got.append((headers, body, outer.status))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def refresh_until(page: Page, rows: Any, what: str, timeout: float = 60.0) -> None:
    """The log is not live: press Refresh until `rows` shows up."""
    deadline = time.monotonic() + timeout
    while rows.count() == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(500)


def test_a_webhook_added_on_the_page_gets_a_signed_event_and_a_dead_delivery_is_replayed(
    page: Page, stack: Stack, device: dict[str, Any], receiver: Receiver
) -> None:
    visit(page, "/app/webhooks")
    expect(page.locator("#webhooks-table")).to_contain_text("No endpoints yet.")
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("local receiver")
    page.get_by_label("message.inbound").check()
    page.get_by_role("button", name="Add endpoint").click()

    expect(page.locator("#secret-panel")).to_be_visible()
    secret = page.locator("#secret-value").inner_text()
    assert secret.startswith("whsec_")
    row = page.locator("#webhooks-table tbody tr", has_text=receiver.url)
    expect(row).to_contain_text("message.inbound")
    shot(page, "webhooks-1280")
    page.get_by_role("button", name="I have kept it").click()
    expect(page.locator("#secret-panel")).to_be_hidden()

    httpx.post(
        f"{stack.sim}/sim/v1/inbound",
        json={"from": "+447911100401", "to": device["phone"], "text": "Any news?"},
        timeout=10,
    ).raise_for_status()
    page.get_by_role("button", name=f"Deliveries to {receiver.url}").click()
    page.get_by_label("Status").select_option("dead")
    page.get_by_role("button", name="Apply").click()
    dead = page.locator("#deliveries-table tbody tr[data-status=dead]")
    refresh_until(page, dead, "the failed delivery to be dead")
    expect(dead.first).to_contain_text("message.inbound")
    expect(dead.first).to_contain_text("500")

    receiver.status = 200
    dead.first.get_by_role("button", name=re.compile("^Replay message.inbound")).click()
    page.get_by_label("Status").select_option("delivered")
    page.get_by_role("button", name="Apply").click()
    delivered = page.locator("#deliveries-table tbody tr[data-status=delivered]")
    refresh_until(page, delivered, "the replayed delivery to be delivered")
    expect(delivered.first).to_contain_text("message.inbound")

    answered = [(h, b) for h, b, status in receiver.got if status == 200]
    assert len(answered) == 1
    headers, body = answered[0]
    assert signing.verify(secret, headers, body, int(time.time()))
    assert b"Any news?" in body
    assert len({h["webhook-id"] for h, _, _ in receiver.got}) == 1  # a replay keeps the id

    page.get_by_role("button", name=f"Delete {receiver.url}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator("#webhooks-table")).to_contain_text("No endpoints yet.")
    expect(page.locator("#log")).to_be_hidden()
