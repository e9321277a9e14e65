"""The panel in real headless Chromium (Debian's, driven by Playwright) against `tribune demo`.

No browser is ever downloaded: Chromium is /usr/bin/chromium (`apt-get install chromium`). On a
developer machine without it these tests skip and say why; on CI (`CI=true`) they fail instead.
Every page records the hosts it asks for: anything but the service fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.room.test_crash_restart import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "panel"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SPEED = 20.0  # Epson warm-up 40 s -> 2 s: long enough to see, short enough to wait for
DEMO_PIN = "2013"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI must install it (see .ci/run)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Demo:
    """A `tribune demo` subprocess on a port of its own."""

    port: int
    data_dir: Path
    speed: float = SPEED
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data_dir / "demo.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the demo and wait until every device answers."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tribune", "demo", "--port", str(self.port),
                 "--speed", str(self.speed), "--data-dir", str(self.data_dir)],
                stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                room = self.api("GET", "/room")
                if all(d["online"] for d in room["devices"].values()):
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"the demo did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM, and wait for a clean exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API from loopback (instructor scope)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}",
            method=method,
            data=data if data is not None else (b"" if method == "POST" else None),
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    running = Demo(free_port(), tmp_path_factory.mktemp("demo"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


class Requests:
    """Every URL a page asked for; requests to other hosts are refused and remembered."""

    def __init__(self, allowed_host: str) -> None:
        self.allowed_host = allowed_host
        self.seen: list[str] = []
        self.foreign: list[str] = []

    def handle(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.netloc == self.allowed_host:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()


def open_panel(browser: Browser, base_url: str, requests: Requests, locale: str = "az") -> Page:
    """A fresh browser context (no stored language) showing the panel."""
    context = browser.new_context(viewport=VIEWPORT, locale=locale, has_touch=True)
    context.route("**/*", requests.handle)
    page = context.new_page()
    page.goto(base_url + "/")
    return page


@pytest.fixture
def page(browser: Browser, demo: Demo) -> Iterator[Page]:
    requests = Requests(f"127.0.0.1:{demo.port}")
    opened = open_panel(browser, demo.url, requests)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    opened.context.close()
    assert not requests.foreign, f"the page asked other hosts: {requests.foreign}"
    assert not errors, f"errors in the page: {errors}"


def screenshot(page: Page, name: str) -> Path:
    """Save a 1280×800 screenshot under test-artifacts/panel/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("TRIBUNE_UPDATE_SCREENSHOTS") == "1" and name.startswith("home-"):
        shutil.copy(path, ROOT / "docs" / "screenshots" / path.name)
    return path


def device_ids(demo: Demo) -> list[str]:
    """The demo's devices, as the API lists them."""
    return list(demo.api("GET", "/room")["devices"])
