"""The instructor's screen in headless Chromium against `tribune demo`: start class, sources,
languages, help, the technician PIN, and no request to any host but the service."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tests.panel.conftest import DEMO_PIN, Demo, device_ids, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

TIMEOUT_MS = 30_000


def state_of(page: Page, device: str) -> str | None:
    return page.get_attribute(f"[data-testid=device-{device}]", "data-state")


def wait_state(page: Page, device: str, state: str, timeout: float = TIMEOUT_MS) -> None:
    page.wait_for_selector(
        f"[data-testid=device-{device}][data-state={state}]", timeout=timeout, state="attached"
    )


def test_start_class_turns_every_device_on(page: Page, demo: Demo) -> None:
    devices = device_ids(demo)
    for device in devices:
        page.wait_for_selector(f"[data-testid=device-{device}]", state="attached")
    wait_state(page, "projector", "off")
    button = page.get_by_test_id("scene-class-start")
    # Feedback within 100 ms: the button is marked pending in the same task as the tap.
    started = time.monotonic()
    button.click()
    pending = button.get_attribute("data-pending")
    assert pending == "true"
    assert time.monotonic() - started < 0.5  # the click round trip itself, generously
    wait_state(page, "projector", "warming")
    text = page.get_by_test_id("device-projector").inner_text()
    assert "Qızır" in text, text
    screenshot(page, "warming-up")
    for device in devices:
        wait_state(page, device, "on")
    page.wait_for_selector("[data-testid=room-status][data-state=ready]", state="attached")
    page.wait_for_selector("[data-testid=source-lectern-pc][data-state=active]")


def test_source_tile_routes_the_switcher(page: Page, demo: Demo) -> None:
    tile = page.get_by_test_id("source-document-camera")
    tile.wait_for()
    page.wait_for_selector("body[data-connected=true]", state="attached")
    tile.click()
    deadline = time.monotonic() + 10
    route: dict[str, str] = {}
    while time.monotonic() < deadline:
        route = demo.api("GET", "/devices/switcher")["reported"]["route"]["value"]
        if set(route.values()) == {"3"}:
            break
        page.wait_for_timeout(100)  # also lets Playwright pass the page's requests on
    assert set(route.values()) == {"3"}, route
    page.wait_for_selector("[data-testid=source-document-camera][data-state=active]")
    assert page.get_by_test_id("source-lectern-pc").get_attribute("data-state") == "idle"
    page.get_by_test_id("source-lectern-pc").click()
    page.wait_for_selector("[data-testid=source-lectern-pc][data-state=active]")


def test_language_switch_persists(page: Page, demo: Demo) -> None:
    page.wait_for_selector("body[data-connected=true]", state="attached")
    assert page.evaluate("document.documentElement.lang") == "az"
    assert page.get_by_test_id("scene-class-start").inner_text() == "Dərsə başla"
    assert page.get_by_test_id("help").inner_text().strip() == "Texniki dəstək çağır"
    screenshot(page, "home-az")
    page.get_by_test_id("lang-en").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.get_by_test_id("scene-class-start").inner_text() == "Start class"
    assert page.get_by_test_id("lang-en").get_attribute("aria-pressed") == "true"
    screenshot(page, "home-en")
    page.reload()
    page.wait_for_selector("body[data-connected=true]", state="attached")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.get_by_test_id("help").inner_text().strip() == "Call technician"
    page.get_by_test_id("lang-ru").click()
    page.wait_for_function("document.documentElement.lang === 'ru'")
    assert page.get_by_test_id("scene-class-start").inner_text() == "Начать занятие"
    screenshot(page, "home-ru")
    page.reload()
    page.wait_for_selector("body[data-connected=true]", state="attached")
    assert page.get_by_test_id("scene-class-end").inner_text() == "Завершить занятие"


def test_help_is_sent_and_audited(page: Page, demo: Demo) -> None:
    help_button = page.get_by_test_id("help")
    page.wait_for_selector("body[data-connected=true]", state="attached")
    help_button.click()
    page.wait_for_selector("[data-testid=help][data-state=sent]")
    assert "Texnik çağırıldı" in help_button.inner_text()
    entries = demo.api("GET", "/audit?limit=20")["entries"]
    helps = [e for e in entries if e["action"] == "help.request"]
    assert helps, entries
    assert (helps[0]["who"], helps[0]["result"]) == ("panel", "sent")


def test_volume_and_mute_reach_the_switcher(page: Page, demo: Demo) -> None:
    page.wait_for_selector("body[data-connected=true]", state="attached")
    slider = page.get_by_test_id("volume")
    page.wait_for_selector("[data-testid=volume]:enabled")
    # As a finger drags it: a few input events, then change when it lets go.
    slider.evaluate(
        """(el) => {
            for (const v of [45, 38, 30]) {
                el.value = String(v);
                el.dispatchEvent(new Event("input", { bubbles: true }));
            }
            el.dispatchEvent(new Event("change", { bubbles: true }));
        }"""
    )
    deadline = time.monotonic() + 15
    while demo.api("GET", "/devices/switcher")["reported"]["volume"]["value"] != 30:
        switcher = demo.api("GET", "/devices/switcher")
        assert time.monotonic() < deadline, (
            switcher["desired"],
            switcher["reported"]["volume"],
        )
        page.wait_for_timeout(100)  # also lets Playwright pass the page's requests on
    page.wait_for_selector("[data-testid=volume-value]:has-text('30%')")
    mute = page.get_by_test_id("mute")
    before = mute.get_attribute("aria-pressed")
    mute.click()
    want = "false" if before == "true" else "true"
    page.wait_for_selector(f"[data-testid=mute][aria-pressed={want}][data-pending=false]")


def test_technician_pin_wrong_then_right(page: Page, demo: Demo) -> None:
    page.wait_for_selector("body[data-connected=true]", state="attached")
    page.get_by_test_id("tech-open").click()
    pin = page.get_by_test_id("tech-pin")
    pin.fill("0000")
    page.get_by_test_id("tech-pin-submit").click()
    page.wait_for_selector("[data-testid=tech-pin-error]:has-text('PIN səhvdir')")
    assert page.get_by_test_id("tech-screen").is_hidden()
    for digit in DEMO_PIN:
        page.get_by_test_id(f"pin-key-{digit}").click()
    page.get_by_test_id("tech-pin-submit").click()
    page.get_by_test_id("tech-screen").wait_for()
    for device in device_ids(demo):
        page.get_by_test_id(f"tech-device-{device}").wait_for()
    page.get_by_test_id("reread-switcher").click()
    page.wait_for_selector("[data-testid=reread-result-switcher]:has-text('route=')")
    screenshot(page, "technician")
    page.get_by_test_id("tech-tab-audit").click()
    page.wait_for_selector("[data-testid=tech-audit] td:has-text('technician.session')")
    page.get_by_test_id("tech-tab-logs").click()
    page.get_by_test_id("tech-log-lines").wait_for()
    page.get_by_test_id("tech-tab-profiles").click()
    page.wait_for_selector("[data-testid=tech-profiles] td:has-text('epson-escvp21')")
    audit = demo.api("GET", "/audit?limit=50")["entries"]
    results = [e["result"] for e in audit if e["action"] == "technician.session"]
    assert results[:2] == ["done", "failed: wrong PIN"], results
    page.get_by_test_id("tech-close").click()
    page.get_by_test_id("home").wait_for()


def test_end_class_turns_powered_devices_off(page: Page, demo: Demo) -> None:
    page.wait_for_selector("body[data-connected=true]", state="attached")
    page.get_by_test_id("scene-class-end").click()
    for device in ("projector", "board", "projector-2", "monitor"):
        page.wait_for_selector(
            f"[data-testid=device-{device}]:is([data-state=cooling],[data-state=off])",
            state="attached",
            timeout=TIMEOUT_MS,
        )
    wait_state(page, "projector", "off")
