"""`tribune detect`: simulators that, like real hardware, stay silent at the wrong line settings."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.technician.conftest import tribune
from tribune.cli_technician import ProgressBar
from tribune.drivers.detect import Attempt, plan
from tribune.drivers.runtime import line_settings
from tribune.profiles.loader import ProfileLoader
from tribune.sim import start_simulator

FAST = ("--timeout", "0.3")


async def test_a_switcher_at_a_non_default_baud_is_found_at_that_baud(tmp_path: Path) -> None:
    """Extron SIS defaults to 9600; this one was set to 19200, so only the scan finds it."""
    async with start_simulator("extron-sis", pty=True, speed=50, baud=19200) as sim:
        run = await tribune(
            "detect", "--port", sim.path, "--json", "--data-dir", str(tmp_path), *FAST
        )
    assert run.code == 0, run.out + run.err
    best = json.loads(run.out)["candidates"][0]
    assert (best["profile"], best["baud"], best["line"]) == ("extron-sis", 19200, "19200 8N1")
    assert best["matches"] is True
    assert best["model"].startswith("60-")
    # Not a terminal: progress is plain lines on stderr, one per try.
    assert "detect: 1/" in run.err
    assert "\r" not in run.err


async def test_a_projector_at_its_own_settings_needs_no_scan(tmp_path: Path) -> None:
    """NEC projectors talk at 38400: found in the first pass, before any scan."""
    async with start_simulator("nec-projector", pty=True, speed=50, baud=38400) as sim:
        run = await tribune(
            "detect", "--port", sim.path, "--data-dir", str(tmp_path), "--quiet", *FAST
        )
    assert run.code == 0, run.out + run.err
    first = run.out.splitlines()[1]
    assert "1. nec-projector" in first
    assert "38400 8N1" in first
    assert "next: tribune profile probe nec-projector" in run.out
    assert run.err == ""


async def test_a_tcp_switcher_is_found_by_the_tcp_capable_profiles(tmp_path: Path) -> None:
    async with start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=50) as sim:
        run = await tribune(
            "detect", "--port", f"tcp://127.0.0.1:{sim.port}", "--json",
            "--data-dir", str(tmp_path), *FAST,
        )  # fmt: skip
    assert run.code == 0, run.out + run.err
    candidates = json.loads(run.out)["candidates"]
    assert candidates[0]["profile"] == "extron-sis"
    assert candidates[0]["line"] is None
    # Serial-only profiles are not tried over TCP.
    assert "sony-projector" not in run.err
    assert "extron-sis" in run.err


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts and reads but never answers (a dead serial server)."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_nothing_answering_exits_4_with_a_clear_message(
    tmp_path: Path, silent_server: int
) -> None:
    run = await tribune(
        "detect", "--port", f"tcp://127.0.0.1:{silent_server}", "--quiet",
        "--data-dir", str(tmp_path), *FAST,
    )  # fmt: skip
    assert run.code == 4
    assert f"tcp://127.0.0.1:{silent_server}: no profile got an answer" in run.err


async def test_a_missing_port_exits_4_at_once(tmp_path: Path) -> None:
    run = await tribune("detect", "--port", str(tmp_path / "ttyUSB7"), "--data-dir", str(tmp_path))
    assert run.code == 4
    assert "no such port" in run.err


def test_the_plan_scans_each_rate_once_per_profile() -> None:
    every = [p.profile for p in ProfileLoader().load_all()]
    profiles = [p for p in every if p.codec != "usb"]  # USB profiles take usb:// ports only
    first, rates = plan("/dev/ttyUSB0", every)
    assert len(first) == len(profiles)
    assert [len(r) for r in rates] == [
        sum(line_settings(p).baudrate != baud for p in profiles)
        for baud in (9600, 19200, 38400, 57600, 115200)
    ]
    usb, no_scan = plan("usb://16c0:05df", every)
    assert ([a.profile.id for a in usb], no_scan) == (["usb-hid-relay"], [])
    tcp, none = plan("tcp://10.0.0.5", profiles)
    assert none == []
    assert {a.url for a in tcp if a.profile.id == "pjlink"} == {"tcp://10.0.0.5:4352"}
    assert plan("socket://10.0.0.5:4001", profiles)[1] == []


def test_the_progress_bar_redraws_in_place_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = ProgressBar(stream)
    profile = ProfileLoader().load("extron-sis").profile
    attempt = Attempt(profile, "/dev/ttyUSB0", None, "9600 8N1")
    bar(0, 4, attempt)
    bar(2, 4, attempt)
    bar(4, 4, attempt)
    text = stream.getvalue()
    assert text.count("\r") >= 3
    assert "[############............] 2/4 extron-sis at 9600 8N1" in text
    assert "\n" not in text
