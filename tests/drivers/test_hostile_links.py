"""Hostile links: bytes one at a time, notifications mid-request, adapters pulled and replugged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.drivers.test_runtime_pjlink import fast, wait_for
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus, Source
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import Profile
from tribune.sim import RunningSimulator, start_simulator


async def serve_pjlink(
    respond: Callable[[str], list[str]], *, trickle: float = 0.0
) -> tuple[asyncio.Server, int]:
    """A hand-written PJLink peer: `respond(command)` gives the lines to send back."""

    async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
        if not trickle:
            writer.write(data)
            await writer.drain()
            return
        for byte in data:  # one byte per write, with a pause: the slowest serial server
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(trickle)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await send(writer, b"PJLINK 0\r")
        try:
            while line := await reader.readuntil(b"\r"):
                for reply in respond(line.decode().strip()):
                    await send(writer, reply.encode() + b"\r")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def simple_projector() -> Callable[[str], list[str]]:
    state = {"POWR": "0", "INPT": "31", "AVMT": "30"}

    def respond(command: str) -> list[str]:
        name, _, param = command[2:].partition(" ")
        if param == "?":
            return [f"%1{name}={state.get(name, 'ERR1')}"]
        state[name] = param
        return [f"%1{name}=OK"]

    return respond


async def test_reply_split_into_single_bytes(pjlink_profile: Profile) -> None:
    server, port = await serve_pjlink(simple_projector(), trickle=0.002)
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("power") == "off"
        await rt.set("input", "digital2")
        assert await rt.get("input") == "digital2"
    finally:
        await rt.stop()
        server.close()


async def test_notification_in_the_middle_of_a_request(pjlink_profile: Profile) -> None:
    """A class 2 status notification arriving before the reply is an event, not the reply."""
    base = simple_projector()

    def respond(command: str) -> list[str]:
        return ["%2LKUP=00-11-22-33-44-55", "%2POWR=1", *base(command)]

    server, port = await serve_pjlink(respond)
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{port}", poll=False)
    events: list[DeviceEvent] = []
    rt.subscribe(events.append)
    await rt.start()
    try:
        assert await rt.get("input") == "digital1"
        assert await rt.get("power") == "off"
        notifications = [e for e in events if e.kind == "notification"]
        assert notifications
        assert all(e.frame is not None for e in notifications)
    finally:
        await rt.stop()
        server.close()


async def test_garbage_between_replies_is_skipped(pjlink_profile: Profile) -> None:
    base = simple_projector()

    def respond(command: str) -> list[str]:
        return ["\x00\xff\x13garbage!!", *base(command)]

    server, port = await serve_pjlink(respond)
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("power") == "off"
        assert rt.health.status is HealthStatus.ONLINE
    finally:
        await rt.stop()
        server.close()


async def test_warm_up_is_never_reported_as_off(pjlink_profile: Profile) -> None:
    """Some projectors say "standby" for a moment after "on": that is warming up, not off."""
    answers = {"POWR": "0"}

    def respond(command: str) -> list[str]:
        name, _, param = command[2:].partition(" ")
        if param == "?":
            return [f"%1{name}={answers.get(name, '0')}"]
        return [f"%1{name}=OK"]  # accepts "on" but keeps reporting standby for a while

    server, port = await serve_pjlink(respond)
    profile = fast(pjlink_profile, warmup=5)
    rt = DeviceRuntime("p", profile, f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        await rt.set("power", "on")
        assert await rt.get("power") == "warming"
        answers["POWR"] = "1"
        assert await rt.get("power") == "on"
        answers["POWR"] = "0"
        assert await rt.get("power") == "off"  # after the warm-up phase ended, off is off
    finally:
        await rt.stop()
        server.close()


@pytest.fixture
def serial_profile() -> Profile:
    """Epson ESC/VP21 over a serial line (a pty here)."""
    return ProfileLoader().load("epson-escvp21").profile


@pytest.fixture
async def epson_on_pty(tmp_path: Path) -> AsyncIterator[RunningSimulator]:
    link = tmp_path / "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"
    async with start_simulator("epson-escvp21", pty=True, link=str(link), speed=50) as sim:
        yield sim


async def test_adapter_unplugged_and_replugged(
    epson_on_pty: RunningSimulator, serial_profile: Profile
) -> None:
    """The by-id symlink points at a new tty after a replug: the runtime finds it again."""
    sim = epson_on_pty
    assert sim.link is not None
    profile = fast(serial_profile, reply_timeout=0.5, reconnect_max=1.0)
    rt = DeviceRuntime("board", profile, sim.link)
    await rt.start()
    try:
        await wait_for(lambda: rt.health.status is HealthStatus.ONLINE, timeout=5)
        await wait_for(lambda: "power" in rt.state, timeout=5)
        sim.unplug()
        await wait_for(lambda: rt.health.status is HealthStatus.OFFLINE, timeout=2)
        await asyncio.sleep(1.0)
        replugged = time.time()
        sim.replug()
        await wait_for(lambda: rt.health.status is HealthStatus.ONLINE, timeout=5)
        await wait_for(lambda: rt.state["power"].at >= replugged, timeout=5)
        assert rt.state["power"].source is Source.POLL
    finally:
        await rt.stop()
