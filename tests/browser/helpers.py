"""What the browser tests share: the stack they drive, screenshots, and set-up through the
public API and the simulator's control API."""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests import devup

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Stack:
    base: str
    """The api-gateway's root URL (dashboard and API)."""
    sim: str
    key: str
    output: list[str] = field(default_factory=list)

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base}/api/v1",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=15,
        )


DOCUMENTED = {
    "sign-in",
    "devices",
    "devices-pair-qr",
    "devices-pair-code",
    "devices-delete",
    "leads",
    "leads-import",
    "campaigns",
    "campaign-new",
    "campaign-report",
    "campaign-report-failed",
    "sequence-new",
    "sequence",
    "sequences",
    "monitoring",
    "devices-390",
    "campaign-report-390",
    "leads-390",
}


def visit(page: Page, path: str) -> None:
    """Open a dashboard page and wait until it has loaded what it shows first."""
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot as a test artifact (and, when asked, as a documented one)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1" and name in DOCUMENTED:
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        small(path, DOC_SHOTS / path.name)
    return path


def small(source: Path, target: Path) -> None:
    """A palette PNG (a few times smaller for flat UI pictures), else a plain copy."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with the campaign-service
        shutil.copyfile(source, target)
        return
    with Image.open(source) as image:
        out = io.BytesIO()
        image.convert("RGB").quantize(colors=128).save(out, format="PNG", optimize=True)
    target.write_bytes(out.getvalue())


# -- the stack, through its APIs ----------------------------------------------------------


def until(check: Any, what: str, timeout: float = 15.0) -> Any:
    """Call `check` until it returns something truthy, up to a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def connect_device(stack: Stack, name: str, phone: str) -> dict[str, Any]:
    """A simulator device, paired by code through the simulator, connected."""
    with stack.api() as api:
        device = api.post("/devices", json={"name": name, "driver": "sim"}).raise_for_status()
        device_id = device.json()["id"]
        pairing = api.post(
            f"/devices/{device_id}/pair", json={"method": "code", "phone": phone}
        ).raise_for_status()
        code = pairing.json()["code"]
        httpx.post(
            f"{stack.sim}/sim/v1/devices/{device_id}/enter-code", json={"code": code}, timeout=10
        ).raise_for_status()

        def connected() -> dict[str, Any] | None:
            found: dict[str, Any] = api.get(f"/devices/{device_id}").json()
            return found if found.get("status") == "connected" else None

        result: dict[str, Any] = until(connected, f"device {name} to connect", timeout=30)
        return result


def create_leads(
    stack: Stack, device_id: str, leads: list[tuple[str, str]], tags: list[str]
) -> list[str]:
    ids = []
    with stack.api() as api:
        for phone, name in leads:
            response = api.post(
                "/leads", json={"phone": phone, "name": name, "device_id": device_id, "tags": tags}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@contextlib.contextmanager
def dev_up(data: Path, **extra_env: str) -> Iterator[Stack]:
    """`./dev up` on free ports with data under `data`, a dev tenant whose key the tests
    know, and `extra_env` on top; stopped with Ctrl-C (then killed) on the way out."""
    key = f"browser-{secrets.token_hex(16)}"
    env = {
        "WACAST_DEV_TENANT": "browser",
        "WACAST_DEV_API_KEY": key,
        # Pairing completes only when the test types the code or scans the QR, and the QR
        # rotates fast enough to see it refresh.
        "WACAST_SIM_PAIR_DELAY": "0",
        "WACAST_SIM_QR_ROTATE_SECONDS": "2",
        # No ban model and no random failures: zero pacing stays legal, failures are the
        # numbers ending in 0000 (not on WhatsApp).
        "WACAST_SIM_PROFILE": "bench",
    }
    with devup.dev_up(data, {**env, **extra_env}) as (_, output):
        text = output.text
        base = re.search(r"dashboard\s+(http://127\.0\.0\.1:\d+)/", text)
        sim = re.search(r"simulator\s+(http://127\.0\.0\.1:\d+)", text)
        assert base, text
        assert sim, text
        yield Stack(base=base.group(1), sim=sim.group(1), key=key, output=output.lines)
