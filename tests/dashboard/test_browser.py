"""The host's story in a real browser against real processes: log in and book with the keyboard
only, watch the code reach the lock, type it at the emulated keypad and see the entry arrive in
the live feed, open the door remotely, revoke the code and see the next try refused. Also checks
labels on every field, and saves the screenshots the README shows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from simulator.broker import free_port
from simulator.keypad import KeypadControl
from simulator.stack import Api, Stack, provision_property

pytestmark = pytest.mark.e2e

ZONE = "Europe/Madrid"
EMAIL = "hannah@example.com"
PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 30_000  # the agent applies a new desired state within a second or two; slack for CI
MAX_TABS = 80  # a keyboard user reaches any field of these pages in fewer presses
UNLABELLED = """() => Array.from(
  document.querySelectorAll('input:not([type="hidden"]), select, textarea')
).filter((el) => el.labels.length === 0).map((el) => el.outerHTML)"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    site = Stack(tmp_path / "site", api_port=free_port(), broker_port=free_port())
    yield site
    site.stop()


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """The system's Chromium (Playwright never downloads one here)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _type_at_keypad(stack: Stack, code: str) -> dict[str, Any]:
    """Type a code at the emulated keypad; its reaction. (Own thread: Playwright's sync API
    keeps an event loop of its own on this one.)"""
    keypad = KeypadControl(str(stack.keypad_control))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, keypad.type_code(code, wait=5)).result()


def _tab_to(page: Page, selector: str) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(MAX_TABS):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached with {MAX_TABS} presses of Tab")


def _labels_everywhere(page: Page) -> None:
    assert page.evaluate(UNLABELLED) == [], f"fields without a label on {page.url}"


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def _start(stack: Stack) -> tuple[Api, dict[str, str]]:
    stack.init_cloud()
    broker = stack.start_broker()
    stack.start_cloud(broker)
    api = Api(stack.api_url)
    api.register_or_login(EMAIL, PASSWORD, "Hannah")
    ids = provision_property(api, "Piso Centro", ZONE)
    # Check-in at midnight: a booking from today is valid at once.
    api.call("PUT", f"/properties/{ids['property_id']}", {"checkInTime": "00:00"})
    # A second property whose gateway is not installed yet, as a new host's would be.
    other = api.call("POST", "/properties", {"name": "Casa Playa", "timezone": ZONE}, 201)
    api.call("POST", f"/properties/{other['id']}/gateways", {"name": "Garden Pi"}, 201)
    stack.start_keypad()
    stack.enroll_agent(ids["enrollment_token"])
    stack.start_agent()
    return api, ids


def test_the_host_story(stack: Stack, chromium: Browser) -> None:
    api, ids = _start(stack)
    context = chromium.new_context(viewport=DESKTOP, locale="en-US", timezone_id=ZONE)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()

    # Keyboard only: the login form, then the overview.
    page.goto(stack.api_url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    _labels_everywhere(page)
    _shot(page, "login")
    _tab_to(page, "#email")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your properties")).to_be_visible()
    expect(page.locator("[data-live-status]")).to_have_text("Live updates on")
    card = page.locator(f"[data-property-id='{ids['property_id']}']")
    expect(card.get_by_text("online")).to_be_visible()  # the agent connected
    expect(card).to_contain_text("Locked")  # and the keypad's strike reports in
    expect(page.get_by_text("Nothing needs attention")).to_be_visible()
    _labels_everywhere(page)
    _shot(page, "overview")

    # Keyboard only: to the property, and a booking from today to the day after tomorrow.
    _tab_to(page, f"a[href='/app/properties/{ids['property_id']}']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Piso Centro")).to_be_visible()
    expect(page.locator("[data-sync]")).to_have_attribute("data-sync", "current")
    expect(page.get_by_role("button", name="Unlock Front door")).to_be_visible()
    assert page.get_by_role("button", name="Lock Front door", exact=True).count() == 0  # a strike
    _labels_everywhere(page)
    today = datetime.now(ZoneInfo(ZONE)).date()
    leaving = today + timedelta(days=2)
    _tab_to(page, "#booking-guestName")
    page.keyboard.type("Ada Lovelace")
    _tab_to(page, "#booking-to")
    page.keyboard.type(leaving.strftime("%m%d%Y"))
    assert page.input_value("#booking-from") == str(today)
    assert page.input_value("#booking-to") == str(leaving)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Booking for Ada Lovelace created")
    booking = page.locator("li[data-booking-id]", has_text="Ada Lovelace")
    pin = booking.locator("[data-pin]").inner_text()
    assert re.fullmatch(r"\d{6}", pin)

    # From here on the page is never reloaded: the marker would be gone.
    page.evaluate("window.kasifyTestMarker = 1")
    expect(booking.locator("[data-state]")).to_have_attribute("data-state", "set")

    granted = _type_at_keypad(stack, pin)
    assert granted["result"] == "granted"
    entry = page.locator("#feed li[data-type='access_granted']")
    expect(entry).to_contain_text("Ada Lovelace opened Front door")
    expect(entry).to_contain_text("at the door keypad")
    assert page.evaluate("window.kasifyTestMarker") == 1
    _shot(page, "property")

    # Remote unlock, confirmed in the browser's dialog.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Unlock Front door").click()
    expect(page.get_by_role("status")).to_have_text("Front door unlocked.")

    # Revoke the code; once the gateway has the change, the same PIN is refused.
    booking = page.locator("li[data-booking-id]", has_text="Ada Lovelace")
    page.once("dialog", lambda dialog: dialog.accept())
    booking.get_by_role("button", name="Revoke code").click()
    expect(page.get_by_role("status")).to_contain_text("Code revoked")
    expect(booking).to_contain_text("No active code")
    page.evaluate("window.kasifyTestMarker = 2")
    expect(page.locator("[data-sync]")).to_have_attribute("data-sync", "current")
    denied = _type_at_keypad(stack, pin)
    assert denied["result"] == "denied"
    refusal = page.locator("#feed li[data-type='access_denied']")
    expect(refusal).to_contain_text("Code refused at Front door")
    expect(refusal).to_contain_text("Not a valid code")
    assert page.evaluate("window.kasifyTestMarker") == 2

    page.goto(stack.api_url + "/app/gateways")
    row = page.locator(f"tr[data-gateway-id='{ids['gateway_id']}']")
    expect(row).to_contain_text("online")
    expect(row).to_contain_text("trusted")
    _labels_everywhere(page)
    _shot(page, "gateways")

    phone = chromium.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id=ZONE,
        storage_state=context.storage_state(),
    )
    small = phone.new_page()
    small.goto(f"{stack.api_url}/app/properties/{ids['property_id']}")
    expect(small.locator("[data-live-status]")).to_have_text("Live updates on")
    _shot(small, "property-phone")
    phone.close()
    context.close()
    api.close()
