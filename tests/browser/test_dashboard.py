"""The dashboard, page by page, in Debian's chromium against the embedded stack.

Each test does what a person would: signs in, pairs a device by code and sees it connect
without a reload, imports a CSV, sends an image campaign with zero pacing, opens its report
and lists only the failed messages, deletes a device after the warning, builds a sequence,
watches the monitoring page. Waits are Playwright's deadlines (`expect`), never sleeps.
"""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
import segno
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.helpers import PHONE, Stack, create_leads, shot, until, visit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")


def png(size: int = 600) -> bytes:
    """A real PNG to upload (a QR code, big enough to be recompressed)."""
    image = io.BytesIO()
    segno.make("https://example.com/spring-sale", error="h").save(
        image, kind="png", scale=size // 40, dark="#0b7a62", light="#fdfcf7"
    )
    return image.getvalue()


def device_row(page: Page, name: str) -> Any:
    return page.locator("#devices-table tbody tr", has_text=name)


# -- sign-in -------------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_key_and_keeps_the_right_one_for_the_tab(
    fresh_page: Page, stack: Stack
) -> None:
    page = fresh_page
    visit(page, "/app/leads")
    expect(page).to_have_url(re.compile(r"/app/sign-in\?next=%2Fapp%2Fleads"))
    shot(page, "sign-in")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown, revoked or expired")
    page.get_by_label("API key").fill(stack.key)
    page.get_by_role("button", name="Sign in").press("Enter")
    expect(page).to_have_url(re.compile(r"/app/leads$"))
    expect(page.locator("#tenant-name")).to_have_text("browser")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/app/sign-in"))


# -- devices -------------------------------------------------------------------------------


def test_pair_a_device_by_code_and_see_it_connect_live(page: Page, stack: Stack) -> None:
    visit(page, "/app/devices")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Add device").click()
    add = page.locator("#add-dialog")
    add.get_by_label("Name").fill("Sales phone")
    add.get_by_label("Simulator (demos and tests)").check()
    add.get_by_role("button", name="Add device").click()

    dialog = page.locator("#pair-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Type a code on the phone").check()
    dialog.get_by_label("Phone number of the WhatsApp account").fill("+447911123402")
    dialog.get_by_role("button", name="Start pairing").click()
    code = page.locator("#pair-code")
    expect(code).to_have_text(CODE)
    row = device_row(page, "Sales phone")
    expect(row).to_have_attribute("data-status", "pairing")
    shot(page, "devices-pair-code")

    # No reload from here on: the page learns of the connection over the live socket.
    page.evaluate("window.__sameDocument = true")
    device_id = row.get_attribute("data-id")
    httpx.post(
        f"{stack.sim}/sim/v1/devices/{device_id}/enter-code",
        json={"code": code.inner_text()},
        timeout=10,
    ).raise_for_status()
    expect(row).to_have_attribute("data-status", "connected")
    expect(row.locator(".badge")).to_have_text("connected")
    expect(row).to_contain_text("+447911123402")
    expect(dialog).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "devices")


def test_pair_by_qr_shows_the_code_and_replaces_it_as_it_rotates(page: Page, stack: Stack) -> None:
    with stack.api() as api:
        device_id = api.post("/devices", json={"name": "QR phone", "driver": "sim"}).json()["id"]
    visit(page, "/app/devices")
    row = device_row(page, "QR phone")
    row.get_by_role("button", name="Pair").click()
    dialog = page.locator("#pair-dialog")
    dialog.get_by_role("button", name="Start pairing").click()
    image = page.locator("#qr-image")
    expect(image).to_have_attribute("src", re.compile(r"^(blob:|data:image/png)"))
    first = image.get_attribute("src")
    # The simulator rotates the QR every 2 s here; the new one arrives over the socket.
    expect(image).not_to_have_attribute("src", first or "")
    assert page.evaluate("document.querySelector('#qr-image').naturalWidth") > 100
    shot(page, "devices-pair-qr")
    httpx.post(
        f"{stack.sim}/sim/v1/devices/{device_id}/scan", json={"phone": "+447911123403"}, timeout=10
    ).raise_for_status()
    expect(row).to_have_attribute("data-status", "connected")
    expect(dialog).to_be_hidden()


def test_delete_a_device_after_a_warning_with_what_goes(page: Page, stack: Stack) -> None:
    with stack.api() as api:
        device_id = api.post("/devices", json={"name": "Old phone", "driver": "sim"}).json()["id"]
    create_leads(
        stack, device_id, [("+447911123501", "Olive"), ("+447911123502", "Oscar")], ["old"]
    )
    with stack.api() as api:
        until(
            lambda: api.get(f"/devices/{device_id}/deletion-impact").json()["leads"] == 2,
            "the leads to count",
        )
    visit(page, "/app/devices")
    row = device_row(page, "Old phone")
    row.get_by_role("button", name="Delete").click()
    dialog = page.locator("#delete-dialog")
    expect(dialog.locator("#delete-impact")).to_contain_text("2 leads")
    expect(dialog.locator("#delete-impact")).to_contain_text("0 messages")
    expect(dialog.locator("#delete-impact")).to_contain_text("cannot be undone")
    confirm = dialog.get_by_role("button", name=re.compile(r"^Delete device, 2 leads"))
    expect(confirm).to_be_enabled()
    shot(page, "devices-delete")
    confirm.click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(0)
    with stack.api() as api:
        until(lambda: api.get(f"/devices/{device_id}").status_code == 404, "the device to go")
    page.reload()
    expect(page.locator("#devices-table tbody tr").first).to_be_visible()
    expect(device_row(page, "Old phone")).to_have_count(0)


def test_keyboard_opens_and_closes_a_dialog_and_focus_is_visible(page: Page) -> None:
    visit(page, "/app/devices")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    add = page.get_by_role("button", name="Add device")
    add.focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    expect(page.locator("#add-dialog")).to_be_visible()
    expect(page.locator("#device-name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#add-dialog")).to_be_hidden()


# -- leads -----------------------------------------------------------------------------------


def test_import_a_csv_with_progress_and_row_errors(
    page: Page, stack: Stack, device: dict[str, Any]
) -> None:
    csv = (
        "phone,name,tags,city\n"
        "+447911200101,Alice Adams,vip;spring,Leeds\n"
        "+447911200102,Bob Brown,spring,York\n"
        "+447911200103,Cara Cole,,Bath\n"
        "not-a-phone,Bad Row,,\n"
        "+447911200104,Dan Dale,spring,Hull\n"
    )
    visit(page, "/app/leads")
    page.get_by_role("button", name="Import CSV").click()
    dialog = page.locator("#import-dialog")
    dialog.get_by_label("CSV file").set_input_files(
        files=FilePayload(name="spring.csv", mimeType="text/csv", buffer=csv.encode())
    )
    dialog.get_by_label("Tags for every row").fill("imported")
    dialog.get_by_role("button", name="Import").click()
    progress = page.locator("#import-progress")
    expect(page.locator("#import-run")).to_have_attribute("data-status", "completed")
    assert progress.evaluate("p => p.value === p.max && p.max > 0")
    expect(page.locator("[data-count=created]")).to_have_text("4 created")
    expect(page.locator("[data-count=failed]")).to_have_text("1 failed")
    errors = page.locator("#import-errors-table tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("5")
    expect(errors.first).to_contain_text("phone")
    shot(page, "leads-import")
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("#leads-table")).to_contain_text("Alice Adams")
    expect(page.locator("#leads-table")).to_contain_text("Dan Dale")

    filters = page.locator("#filters")
    filters.get_by_label("Tag", exact=True).fill("vip")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#leads-table tbody tr")).to_have_count(1)
    expect(page.locator("#leads-table tbody tr")).to_contain_text("Alice Adams")
    expect(page).to_have_url(re.compile(r"tag=vip"))
    filters.get_by_label("Tag", exact=True).fill("")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#leads-table tbody tr", has_text="Cara Cole")).to_have_count(1)
    shot(page, "leads")


def test_add_and_edit_a_lead_and_show_the_apis_problem(page: Page, device: dict[str, Any]) -> None:
    visit(page, "/app/leads")
    page.get_by_role("button", name="Add lead").click()
    dialog = page.locator("#lead-dialog")
    dialog.get_by_label("Phone", exact=True).fill("12")
    dialog.get_by_label("Name", exact=True).fill("Nobody")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("not valid")
    dialog.get_by_label("Phone", exact=True).fill("+447911200201")
    dialog.get_by_label("Name", exact=True).fill("Erin Eve")
    dialog.get_by_label("Tags").fill("new, spring")
    dialog.get_by_label("Attributes").fill("city=Derby")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    row = page.locator("#leads-table tbody tr", has_text="Erin Eve")
    expect(row).to_contain_text("spring")
    row.get_by_role("button", name="Edit Erin Eve").click()
    expect(dialog.get_by_label("Attributes")).to_have_value("city=Derby")
    dialog.get_by_label("Status").select_option("customer")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#leads-table tbody tr", has_text="Erin Eve")).to_contain_text("customer")


# -- campaigns -------------------------------------------------------------------------------


def test_image_campaign_with_zero_pacing_then_only_failed_rows_in_the_report(
    page: Page, stack: Stack, device: dict[str, Any]
) -> None:
    create_leads(
        stack,
        device["id"],
        [("+447911100011", "Fay"), ("+447911100012", "Gus"), ("+447911100000", "Zed")],
        ["promo"],
    )
    visit(page, "/app/campaigns/new")
    page.get_by_label("Campaign name").fill("Spring promo")
    page.get_by_label("With tags").fill("promo")
    page.get_by_label("Text").fill("Hi {name|there}, spring is here!")
    page.get_by_label("As seen by").select_option("")
    expect(page.locator("[data-preview-text]")).to_have_text("Hi Alice, spring is here!")
    page.get_by_label("Image").check()
    page.get_by_label("File", exact=True).set_input_files(
        files=FilePayload(name="spring.png", mimeType="image/png", buffer=png())
    )
    expect(page.locator("[data-media-info]")).to_contain_text("Stored:")
    final = page.locator("[data-final-size]")
    expect(final).to_have_text(re.compile(r"\d+(\.\d)? (B|KB)"))
    assert 0 < int(final.get_attribute("data-final-size") or 0) < 350_000
    expect(page.locator("[data-preview] img")).to_be_visible()
    page.get_by_label("Min. seconds between sends").fill("0")
    page.get_by_label("Max. seconds between sends").fill("0")
    shot(page, "campaign-new")
    page.get_by_role("button", name="Create campaign").click()

    expect(page).to_have_url(re.compile(r"/app/campaigns/cmp_"))
    expect(page.locator("#c-name")).to_have_text("Spring promo")
    expect(page.locator("[data-count=total]")).to_have_text("3", timeout=30_000)
    expect(page.locator("[data-count=pending]")).to_have_text("0", timeout=30_000)
    expect(page.locator("[data-count=success]")).to_have_text("2")
    expect(page.locator("[data-count=failed]")).to_have_text("1")
    expect(page.locator("[data-chart=funnel]")).to_be_visible()
    expect(page.locator("#devices-table tbody")).to_contain_text(device["name"])
    shot(page, "campaign-report", full_page=True)

    page.get_by_role("button", name=re.compile(r"^Failed")).click()
    expect(page.locator("#messages-title")).to_have_text("Failed messages across all devices")
    rows = page.locator("#messages-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-status", "failed")
    expect(rows.first).to_contain_text("Zed")
    expect(rows.first).to_contain_text("+447911100000")
    expect(rows.first).to_contain_text(device["name"])
    expect(rows.first).to_contain_text("not on whatsapp")
    expect(page).to_have_url(re.compile(r"status=failed"))
    page.locator("#messages").scroll_into_view_if_needed()
    shot(page, "campaign-report-failed")

    page.locator("#devices-table tbody").get_by_role(
        "button", name=device["name"], exact=True
    ).click()
    expect(page.locator("#messages-title")).to_have_text(f"All messages from {device['name']}")
    expect(rows).to_have_count(3)
    expect(page.locator("#messages-table tbody tr[data-status=failed]")).to_have_count(1)

    # The lead behind a row: its detail with every message it got.
    rows.filter(has_text="Zed").get_by_role("link", name="Zed").click()
    detail = page.locator("#detail-dialog")
    expect(detail).to_be_visible()
    expect(detail.locator("#detail-title")).to_have_text("Zed")
    expect(detail.locator("tbody tr[data-status=failed]")).to_contain_text("not on whatsapp")
    expect(detail).to_contain_text("Hi Zed, spring is here!")

    visit(page, "/app/campaigns")
    campaign = page.locator("#campaigns-table tbody tr", has_text="Spring promo")
    expect(campaign.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(campaign).to_contain_text("2 sent · 1 failed")
    shot(page, "campaigns")


def test_a_scheduled_campaign_can_be_cancelled_from_the_list(
    page: Page, device: dict[str, Any]
) -> None:
    visit(page, "/app/campaigns/new")
    page.get_by_label("Campaign name").fill("Next week")
    page.get_by_label("Text").fill("See you next week, {name}")
    page.get_by_label("Schedule").check()
    page.get_by_label(re.compile(r"^Send at")).fill("2099-01-01T09:30")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator("#c-status .badge")).to_have_text("pending")
    visit(page, "/app/campaigns")
    row = page.locator("#campaigns-table tbody tr", has_text="Next week")
    expect(row).to_have_attribute("data-status", "pending")
    row.get_by_role("button", name="Cancel: Next week").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel campaign").click()
    expect(row).to_have_attribute("data-status", "cancelled")


# -- sequences --------------------------------------------------------------------------------


def test_build_a_sequence_enroll_leads_and_remove_one(
    page: Page, stack: Stack, device: dict[str, Any]
) -> None:
    create_leads(
        stack, device["id"], [("+447911100021", "Hana"), ("+447911100022", "Ivo")], ["drip"]
    )
    visit(page, "/app/sequences/new")
    page.get_by_label("Name", exact=True).fill("Welcome drip")
    page.get_by_label("Min. seconds between sends").fill("0")
    page.get_by_label("Max. seconds between sends").fill("0")
    steps = page.locator("[data-step]")
    steps.nth(0).get_by_label("Message").fill("Welcome {name|friend}!")
    page.get_by_role("button", name="Add a step").click()
    expect(steps).to_have_count(2)
    steps.nth(1).get_by_label("Wait after the previous step").fill("2")
    steps.nth(1).get_by_label("Message").fill("Still there, {name}?")
    steps.nth(1).get_by_label("Only send in a time window").check()
    expect(page.locator("#s-preview [data-preview-text]")).to_have_text("Still there, Alice?")
    shot(page, "sequence-new", full_page=True)
    page.get_by_role("button", name="Create and activate").click()

    expect(page).to_have_url(re.compile(r"/app/sequences/seq_"))
    expect(page.locator("#s-status .badge")).to_have_text("active")
    expect(page.locator("#steps li")).to_have_count(2)
    expect(page.locator("#steps")).to_contain_text("2 days")
    page.get_by_label("Tags (any of)").fill("drip")
    page.locator("#enroll-form").get_by_role("button", name="Enroll").click()
    expect(page.locator("[data-count=enrolled]")).to_have_text("2")
    enrolled = page.locator("#enrollments-table tbody tr")
    expect(enrolled).to_have_count(2)
    expect(page.locator("[data-count=sent]")).to_have_text("2", timeout=30_000)
    page.locator("#enrollments-table tbody tr", has_text="Ivo").get_by_role(
        "button", name="Remove Ivo"
    ).click()
    page.get_by_role("dialog").get_by_role("button", name="Remove from sequence").click()
    expect(page.locator("#enrollments-table tbody tr", has_text="Ivo")).to_have_attribute(
        "data-status", "removed"
    )
    expect(page.locator("[data-count=removed]")).to_have_text("1")
    shot(page, "sequence", full_page=True)
    visit(page, "/app/sequences")
    expect(page.locator("#sequences-table tbody tr", has_text="Welcome drip")).to_contain_text(
        "2 enrolled"
    )
    shot(page, "sequences")


# -- monitoring and narrow screens ----------------------------------------------------------------


def test_monitoring_shows_live_numbers(page: Page, device: dict[str, Any]) -> None:
    visit(page, "/app/monitoring")
    number = re.compile(r"^\d[\d,.]*$")
    expect(page.locator("[data-metric=lanes_busy]").first).to_have_text(number)
    expect(page.locator("[data-metric=queue_depth]").first).to_have_text(number)
    expect(page.locator("[data-metric=projection_lag]").first).to_have_text(number)
    # A rate needs two readings: the page reads every 3 s.
    expect(page.locator("[data-metric=sends_per_minute]").first).to_have_text(number)
    expect(page.locator("#device-states tbody")).to_contain_text("connected")
    expect(page.locator("#m-sources")).to_be_hidden()
    shot(page, "monitoring")


@pytest.mark.parametrize(
    "path", ["/app/devices", "/app/leads", "/app/campaigns", "/app/sequences", "/app/monitoring"]
)
def test_pages_fit_a_390_px_phone(phone_page: Page, path: str) -> None:
    page = phone_page
    visit(page, path)
    expect(page.locator("main h1").first).to_be_visible()
    expect(page.locator("tbody tr.loading")).to_have_count(0)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"{path} is {overflow}px wide"
    name = path.rsplit("/", 1)[-1]
    shot(page, f"{name}-390", full_page=True)


def test_the_campaign_report_fits_a_390_px_phone(
    phone_page: Page, stack: Stack, device: dict[str, Any]
) -> None:
    create_leads(
        stack, device["id"], [("+447911100031", "Kim"), ("+447911120000", "Lou")], ["narrow"]
    )
    with stack.api() as api:
        created = api.post(
            "/campaigns",
            json={
                "name": "Narrow screens",
                "audience": {"tags": ["narrow"]},
                "message": {"text": "Hi {name}"},
                "pacing": {"min_seconds": 0, "max_seconds": 0},
            },
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
    page = phone_page
    visit(page, f"/app/campaigns/{campaign_id}")
    expect(page.locator("[data-count=total]")).to_have_text("2")
    expect(page.locator("[data-count=failed]")).to_have_text("1")
    expect(page.locator("[data-chart=funnel]")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], f"the report is {overflow}px wide"
    shot(page, "campaign-report-390", full_page=True)


def test_an_unknown_campaign_says_so(page: Page) -> None:
    visit(page, "/app/campaigns/cmp_does_not_exist")
    expect(page.get_by_role("heading", name="No such campaign")).to_be_visible()
