"""The dashboard in a real browser: Debian's chromium driven by Playwright (Python) against
the embedded stack with the simulator, started as `./dev up --ports auto` starts it.

Playwright never downloads a browser here: it launches `/usr/bin/chromium` (`./dev test`
installs the `chromium` package when it is missing). Screenshots go to
`test-artifacts/screenshots/`; with `UPDATE_SCREENSHOTS=1` the documented set is also
copied (palette-compressed) to `docs/screenshots/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    WIDE,
    Stack,
    connect_device,
    dev_up,
)

expect.set_options(timeout=15_000)
BROWSER_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last, so the stack they share (session-wide) idles beside no
    other test."""
    browser = [item for item in items if BROWSER_TESTS in item.path.parents]
    others = [item for item in items if BROWSER_TESTS not in item.path.parents]
    items[:] = others + browser


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system on free ports, with a dev tenant whose key the tests know, for every
    browser test (starting it takes ~12 s; tests use phone numbers of their own). Webhooks may
    reach 127.0.0.1, where the webhooks page's receiver listens, and a failed try is final at
    once, so a dead delivery shows up without waiting."""
    with dev_up(
        tmp_path_factory.mktemp("stack") / "var",
        WACAST_URL_ALLOWLIST="127.0.0.1",
        WACAST_WEBHOOK_MAX_ATTEMPTS="1",
    ) as up:
        yield up


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module: Playwright's sync API keeps an event loop running in this
    thread until it stops, and the async tests after the browser's must have none."""
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `./dev test` installs Debian's chromium "
            "(as root: apt-get update && apt-get install -y chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Errors:
    """Uncaught JavaScript errors of a page: a test fails when its page had any."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def add(self, error: Any) -> None:
        self.seen.append(str(error))


def new_page(browser: Browser, stack: Stack, viewport: dict[str, int], signed_in: bool) -> Page:
    context = browser.new_context(viewport=viewport, base_url=stack.base)  # type: ignore[arg-type]
    if signed_in:
        context.add_init_script(
            f"sessionStorage.setItem('wacast.key', {stack.key!r});"
            "sessionStorage.setItem('wacast.tenant', 'browser');"
        )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = Errors()
    page.on("pageerror", errors.add)
    page.errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A signed-in page at 1280 px."""
    opened = new_page(browser, stack, WIDE, signed_in=True)
    yield opened
    errors = opened.errors.seen  # type: ignore[attr-defined]
    opened.context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def fresh_page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A page at 1280 px that has not signed in."""
    opened = new_page(browser, stack, WIDE, signed_in=False)
    yield opened
    errors = opened.errors.seen  # type: ignore[attr-defined]
    opened.context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def phone_page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """A signed-in page 390 px wide."""
    opened = new_page(browser, stack, PHONE, signed_in=True)
    yield opened
    errors = opened.errors.seen  # type: ignore[attr-defined]
    opened.context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def device(stack: Stack) -> dict[str, Any]:
    """A connected simulator device for tests that send."""
    return connect_device(stack, "Sender 1", "+447911123401")
