"""The technician screen's profile tools in Chromium against `tribune demo`: each device's
profile id, version and sha; flash a file (accepted, then refused with what did not match);
history; roll back with a confirming second tap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.panel.conftest import DEMO_PIN, Demo, screenshot
from tests.technician.flashing import epson_v2, nec

if TYPE_CHECKING:
    from playwright.sync_api import Page


def open_technician(page: Page) -> None:
    page.wait_for_selector("body[data-connected=true]", state="attached")
    page.get_by_test_id("lang-en").click()
    page.get_by_test_id("tech-open").click()
    for digit in DEMO_PIN:
        page.get_by_test_id(f"pin-key-{digit}").click()
    page.get_by_test_id("tech-pin-submit").click()
    page.get_by_test_id("tech-screen").wait_for()


def test_flash_history_and_roll_back_from_the_panel(page: Page, demo: Demo, tmp_path: Path) -> None:
    good = tmp_path / "epson-v2.yaml"
    good.write_text(epson_v2(), encoding="utf-8")
    wrong = tmp_path / "nec-projector.yaml"
    wrong.write_text(nec(), encoding="utf-8")
    open_technician(page)
    cell = "[data-testid=tech-profile-projector]"
    page.wait_for_selector(f"{cell}:has-text('epson-escvp21 v1 · ')")
    page.wait_for_selector(f"{cell}:has-text('(shipped)')")

    page.get_by_test_id("profile-projector").click()
    page.get_by_test_id("profile-panel").wait_for()
    page.wait_for_selector("[data-testid=profile-history]:has-text('Never installed here')")
    assert page.get_by_test_id("rollback").is_disabled()

    page.get_by_test_id("flash-file").set_input_files(str(good))
    page.wait_for_selector(
        "[data-testid=profile-result][data-state=ok]:has-text('now runs epson-escvp21 v2')",
        timeout=30_000,
    )
    page.wait_for_selector(f"{cell}:has-text('epson-escvp21 v2 · ')")
    page.wait_for_selector(f"{cell}:has-text('(installed)')")
    rows = page.locator("[data-testid=profile-history-row]")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-current") == "true"
    assert demo.api("GET", "/devices/projector")["profile_version"] == "2"

    page.get_by_test_id("flash-file").set_input_files(str(wrong))
    page.wait_for_selector("[data-testid=profile-result][data-state=refused]", timeout=30_000)
    problems = page.get_by_test_id("profile-problems").inner_text()
    assert "identify[0] send '00 85 00 00 01 04': no reply" in problems
    assert page.get_by_test_id("flash-force").is_visible()
    screenshot(page, "technician-profile-refused")
    assert demo.api("GET", "/devices/projector")["profile"] == "epson-escvp21"

    rollback = page.get_by_test_id("rollback")
    rollback.click()
    page.wait_for_selector("[data-testid=rollback][data-armed=true]:has-text('Tap again')")
    rollback.click()
    page.wait_for_selector(
        "[data-testid=profile-result][data-state=ok]:has-text('now runs epson-escvp21 v1')"
    )
    page.wait_for_selector(f"{cell}:has-text('(shipped)')")
    assert page.locator("[data-testid=profile-history-row]").count() == 2
    assert demo.api("GET", "/devices/projector")["profile_version"] == "1"
    audit = demo.api("GET", "/audit?limit=20")["entries"]
    done = [(e["action"], e["who"], e["actor"], e["result"][:7]) for e in audit]
    assert ("profile.rollback", "panel", "pin:technician", "done") in done
    assert ("profile.flash", "panel", "pin:technician", "refused") in done
    assert ("profile.flash", "panel", "pin:technician", "done") in done
    page.get_by_test_id("profile-close").click()
    assert page.get_by_test_id("profile-panel").is_hidden()
