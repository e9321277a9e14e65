"""The panel never shows stale state as current: a dropped WebSocket resumes from the last
sequence number, a service restart shows the banner and then the new truth, and a device that
does not answer is shown offline with what to do."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.panel.conftest import Demo, Requests, open_panel, screenshot
from tests.room.test_crash_restart import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, WebSocketRoute

DEVICES = ("projector", "board", "switcher", "projector-2", "codec", "monitor")


@pytest.fixture
def own_demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(free_port(), tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_dropped_websocket_resumes_from_the_last_seq(browser: Browser, own_demo: Demo) -> None:
    requests = Requests(f"127.0.0.1:{own_demo.port}")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", requests.handle)
    page = context.new_page()
    urls: list[str] = []
    sockets: list[WebSocketRoute] = []

    def through(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        sockets.append(ws)
        ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/api/v1/ws.*"), through)
    page.goto(own_demo.url + "/")
    page.wait_for_selector("body[data-connected=true]", state="attached")
    page.wait_for_selector("[data-testid=device-projector][data-state=off]", state="attached")
    sockets[-1].close()
    # While the page has no link, a change happens in the room.
    own_demo.api("POST", "/sources/laptop/select")
    page.wait_for_function("() => document.body.dataset.connected === 'true'", timeout=10_000)
    assert len(urls) >= 2, urls
    assert "since=" in urls[-1], urls
    assert "epoch=" in urls[-1], urls
    page.wait_for_selector("[data-testid=source-laptop][data-state=active]")
    context.close()
    assert not requests.foreign, requests.foreign


def test_service_restart_shows_banner_then_recovers(browser: Browser, own_demo: Demo) -> None:
    requests = Requests(f"127.0.0.1:{own_demo.port}")
    page = open_panel(browser, own_demo.url, requests)
    page.wait_for_selector("body[data-connected=true]", state="attached")
    page.wait_for_selector("[data-testid=device-projector][data-state=off]", state="attached")
    assert page.get_by_test_id("banner").is_hidden()
    own_demo.stop()
    page.get_by_test_id("banner").wait_for(state="visible", timeout=10_000)
    assert "Yenidən qoşulur" in page.get_by_test_id("banner").inner_text()
    for device in DEVICES:
        card = page.get_by_test_id(f"device-{device}")
        # The last known state is not shown as the current one.
        assert card.get_attribute("data-state") == "unknown"
        assert card.get_attribute("data-stale") == "true"
    assert page.get_by_test_id("scene-class-start").is_disabled()
    screenshot(page, "reconnecting")
    own_demo.start()
    page.get_by_test_id("banner").wait_for(state="hidden", timeout=20_000)
    for device in DEVICES:
        page.wait_for_selector(
            f"[data-testid=device-{device}][data-stale=false]:not([data-state=unknown])",
            state="attached",
            timeout=20_000,
        )
    page.get_by_test_id("scene-class-start").click()
    page.wait_for_selector(
        "[data-testid=device-projector]:is([data-state=warming],[data-state=on])"
    )
    page.context.close()
    assert not requests.foreign, requests.foreign


OFFLINE_TOML = """\
[room]
id = "baku/room-9"
name = "Bakı — Mühazirə otağı (test)"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{dead}"
name = {{ az = "Proyektor", en = "Projector", ru = "Проектор" }}

[devices.switcher]
profile = "extron-sis"
port = "tcp://127.0.0.1:{switcher}"
name = {{ az = "Kommutator", en = "AV switcher", ru = "Коммутатор" }}

[sources.lectern-pc]
label = {{ az = "Tribuna kompüteri", en = "Lectern PC", ru = "Компьютер трибуны" }}
icon = "pc"
desired = {{ switcher = {{ route = {{ "1" = "1", "2" = "1" }} }} }}

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
source = "lectern-pc"
desired.projector = {{ power = "on" }}
"""


def test_a_device_that_does_not_answer_is_offline(browser: Browser, tmp_path: Path) -> None:
    switcher_port, dead_port, port = free_port(), free_port(), free_port()
    config = tmp_path / "room.toml"
    config.write_text(OFFLINE_TOML.format(dead=dead_port, switcher=switcher_port), "utf-8")
    log = (tmp_path / "service.log").open("wb")
    sim = subprocess.Popen(
        [sys.executable, "-m", "tribune", "sim", "extron-sis", "--tcp",
         f"127.0.0.1:{switcher_port}", "--speed", "20"],
        stdout=log, stderr=log,
    )  # fmt: skip
    service = subprocess.Popen(
        [sys.executable, "-m", "tribune", "serve", "--config", str(config),
         "--data-dir", str(tmp_path / "data"), "--port", str(port)],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        requests = Requests(f"127.0.0.1:{port}")
        page = None
        for _ in range(100):
            try:
                page = open_panel(browser, f"http://127.0.0.1:{port}", requests)
                break
            except Exception:
                assert service.poll() is None, (tmp_path / "service.log").read_text()
                page = None
                time.sleep(0.2)
        assert page is not None
        page.wait_for_selector(
            "[data-testid=device-projector][data-state=offline]", state="attached", timeout=20_000
        )
        page.wait_for_selector("[data-testid=device-switcher][data-state=on]", state="attached")
        text = page.get_by_test_id("device-projector").inner_text()
        assert "Əlaqə yoxdur" in text, text
        assert "kabel" in text, text
        assert page.get_by_test_id("room-status").get_attribute("data-state") == "trouble"
        screenshot(page, "offline-device")
        page.context.close()
        assert not requests.foreign, requests.foreign
    finally:
        for proc in (service, sim):
            proc.terminate()
            proc.wait(15)
        log.close()
