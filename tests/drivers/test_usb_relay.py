"""The USB HID relay board end to end, through a fake pyusb backend (this machine has no USB).

The fake (`tribune.sim.usbrelay.FakeUsbBackend`, a `usb.backend.IBackend`) stands for libusb-1.0
over the kernel's usbfs: control transfers on `/dev/bus/usb/BBB/DDD`, with the usbhid driver
bound to interface 0 until tribune detaches it (on a real PC that driver is what makes
`/dev/hidrawN`, the node hidapi-based tools such as usbrelay use instead of usbfs). Unplugging
is libusb's NO_DEVICE/IO errors on the handle; the system test (a later issue) runs the real
path in a VM.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.roundtrip.harness import scaled
from tribune.config import parse_config
from tribune.drivers.codecs.usb import UsbControlCodec
from tribune.drivers.runtime import DeviceRuntime, HealthStatus, check_port
from tribune.drivers.transport import LineSettings, Transport
from tribune.drivers.usb_transport import UsbTransport, parse_usb_url
from tribune.errors import ConfigError, FrameError, LinkError, ProtocolError
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import Profile
from tribune.room import Room, check_config_values
from tribune.sim.usbrelay import FakeUsbBackend, UsbRelayBoard
from tribune.store import Store
from tribune.usbscan import pyusb_devices, scan_usb

SET_ON_3 = bytes.fromhex("21 09 00 03 00 00 08 00 FF 03 00 00 00 00 00 00")
GET_STATE = bytes.fromhex("A1 01 00 03 00 00 08 00")


def relay_profile(speed: float = 20.0) -> Profile:
    """The shipped profile with its polls and backoff made quick for tests."""
    return scaled(ProfileLoader().load("usb-hid-relay").profile, speed)


def usb_factory(backend: FakeUsbBackend) -> Callable[[str, LineSettings], Transport]:
    """The seam: the runtime's link opens its `usb://` port through the fake backend."""
    return lambda url, _settings: UsbTransport(url, backend=backend)


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[tuple[UsbRelayBoard, Any]]:
    board = UsbRelayBoard(ident="QWERT", channels=8)
    backend = FakeUsbBackend(board)
    options = getattr(request, "param", {"channel": "3"})
    runtime = DeviceRuntime(
        "relay",
        relay_profile(),
        "usb://16c0:05df?serial=QWERT",
        options=options,
        transport_factory=usb_factory(backend),
    )
    await runtime.start()
    try:
        yield board, runtime
    finally:
        await runtime.stop()


# --- the codec: pure bytes ---------------------------------------------------------------------


def test_the_codec_frames_setup_packets_and_fills_in_out_lengths() -> None:
    codec = UsbControlCodec()
    out = bytes.fromhex("21 09 00 03 00 00 00 00 FF 03")
    assert codec.encode(out) == bytes.fromhex("21 09 00 03 00 00 02 00 FF 03")
    assert codec.encode(GET_STATE) == GET_STATE
    with pytest.raises(ProtocolError):
        codec.encode(GET_STATE + b"\x01")  # an IN request carries no data
    with pytest.raises(ProtocolError):
        codec.encode(b"\x21\x09")

    answer = GET_STATE + b"QWERT\x00\x00\x04"
    assert codec.decode(answer[:12]) == (0, None)  # the IN data is still coming
    size, frame = codec.decode(answer + SET_ON_3[:8])
    assert size == 16
    assert frame is not None
    assert frame.data == answer
    assert codec.reply_matches(GET_STATE, frame) is True
    assert codec.reply_matches(SET_ON_3, frame) is False
    ack = bytes.fromhex("21 09 00 03 00 00 08 00")
    assert codec.decode(ack) == (8, codec.decode(ack)[1])
    stall = bytes.fromhex("A1 01 00 03 00 00 FF FF")  # no data follows a STALL
    assert codec.decode(stall)[0] == 8
    with pytest.raises(FrameError):
        UsbControlCodec(max_length=64).decode(bytes.fromhex("A1 01 00 03 00 00 00 10"))


def test_port_urls() -> None:
    port = parse_usb_url("usb://16c0:05df?serial=QWERT")
    assert (port.vid, port.pid, port.serial) == (0x16C0, 0x05DF, "QWERT")
    assert parse_usb_url("usb://16C0:05DF?path=1-1.2").path == "1-1.2"
    port = parse_usb_url("usb://16c0:05df?bus=1&address=4&timeout=500")
    assert (port.bus, port.address, port.timeout_ms) == (1, 4, 500)
    for bad in (
        "usb://16c0",
        "usb://16c0:05df?colour=red",
        "usb://16c0:05df?bus=one",
        "usb://16c0:05df?path=/dev/hidraw0",
        "usb://16c0:05df?timeout=5",
    ):
        with pytest.raises(ConfigError):
            parse_usb_url(bad)


def test_a_usb_profile_needs_a_usb_port_and_the_reverse() -> None:
    profile = relay_profile()
    check_port(profile, "usb://16c0:05df")
    with pytest.raises(ConfigError, match="usb://VID:PID"):
        check_port(profile, "/dev/ttyUSB0")
    with pytest.raises(ConfigError, match="for USB profiles"):
        check_port(ProfileLoader().load("pjlink").profile, "usb://16c0:05df")
    with pytest.raises(ConfigError):
        DeviceRuntime("relay", profile, "usb://16c0:05df?bogus=1")


# --- the link: channels on and off, read back ---------------------------------------------------


async def test_a_channel_switched_on_and_off_reads_back(
    relay: tuple[UsbRelayBoard, Any],
) -> None:
    board, runtime = relay
    await runtime.set("relay", "on")
    assert board.channel(3)
    assert board.state == 0b100
    assert await runtime.get("relay") == "on"
    await eventually(lambda: runtime.state["relay"].value == "on")
    await runtime.set("relay", "off")
    assert not board.channel(3)
    assert await runtime.get("relay") == "off"
    assert await runtime.get("serial") == "QWERT"
    assert runtime.health.status is HealthStatus.ONLINE

    board.set_report(bytes([0xFF, 3]))  # someone else (the usbrelay CLI) switched it
    await eventually(lambda: runtime.state["relay"].value == "on")  # the poll sees it

    await runtime.action("all_off")
    assert board.state == 0


@pytest.mark.parametrize("relay", [{"channel": "2", "on": "down", "off": "up"}], indirect=True)
async def test_value_names_come_from_the_device_options(
    relay: tuple[UsbRelayBoard, Any],
) -> None:
    board, runtime = relay
    cap = runtime.compiled.capability("relay")
    assert sorted(cap.choices()) == ["down", "up"]
    await runtime.set("relay", "down")
    assert board.state == 0b10
    assert await runtime.get("relay") == "down"
    await runtime.set("relay", "up")
    assert await runtime.get("relay") == "up"


async def test_usb_calls_never_run_on_the_event_loop(relay: tuple[UsbRelayBoard, Any]) -> None:
    board, runtime = relay
    await runtime.set("relay", "on")
    await runtime.get("relay")
    threads = {thread for _call, thread in board.calls}
    assert board.calls, "the fake was used"
    assert threading.current_thread().name not in threads
    assert all(name.startswith("usb") for name in threads), threads
    # usbhid was detached from interface 0 before the HID requests went to it.
    calls = [call for call, _thread in board.calls]
    assert calls.index("detach_kernel_driver") < calls.index("claim_interface")


async def test_the_kernel_driver_gets_the_board_back_when_tribune_lets_go(
    relay: tuple[UsbRelayBoard, Any],
) -> None:
    board, runtime = relay
    await runtime.get("relay")
    assert not board.kernel_driver
    await runtime.stop()
    assert board.kernel_driver  # /dev/hidrawN is back for the technician's tools


# --- unplugged and plugged back -----------------------------------------------------------------


async def test_unplugged_mid_transfer_goes_offline_and_replugged_comes_back(
    relay: tuple[UsbRelayBoard, Any],
) -> None:
    board, runtime = relay
    await runtime.set("relay", "on")
    await eventually(lambda: runtime.health.status is HealthStatus.ONLINE)

    board.unplug_in_transfer = True  # the next transfer finds the board pulled out (EIO)
    with pytest.raises(LinkError):
        await runtime.get("relay")
    await eventually(lambda: runtime.health.status is HealthStatus.OFFLINE)
    assert "no USB device" in (runtime.health.last_error or "")
    with pytest.raises(LinkError):
        await runtime.set("relay", "on")  # offline: said at once, not hung

    board.replug()  # a new address; the board lost its power, so every channel is off
    await eventually(lambda: runtime.health.status is HealthStatus.ONLINE)
    await eventually(lambda: runtime.state["relay"].value == "off")  # re-read, not assumed
    await runtime.set("relay", "on")
    assert board.channel(3)


async def test_a_board_without_permission_is_offline_with_the_fix_named() -> None:
    board = UsbRelayBoard(denied=True)
    runtime = DeviceRuntime(
        "relay",
        relay_profile(),
        "usb://16c0:05df?serial=QWERT",
        transport_factory=usb_factory(FakeUsbBackend(board)),
    )
    await runtime.start()
    try:
        await eventually(lambda: runtime.health.status is HealthStatus.OFFLINE)
        assert "61-tribune-usbrelay.rules" in (runtime.health.last_error or "")
    finally:
        await runtime.stop()


# --- choosing a board ---------------------------------------------------------------------------


async def test_two_boards_are_told_apart_by_id_path_or_address() -> None:
    first = UsbRelayBoard(ident="AAAAA", bus=1, ports=(1, 2), address=4)
    second = UsbRelayBoard(ident="BBBBB", bus=1, ports=(1, 3), address=5)
    backend = FakeUsbBackend(first, second)
    codec = UsbControlCodec()

    async def switch_on(url: str) -> None:
        transport = UsbTransport(url, backend=backend)
        await transport.open()
        try:
            transport.write(codec.encode(bytes.fromhex("21 09 00 03 00 00 08 00 FF 01")))
            assert (await transport.read())[:2] == b"\x21\x09"
        finally:
            await transport.close()

    await switch_on("usb://16c0:05df?serial=BBBBB")
    assert (first.state, second.state) == (0, 1)
    await switch_on("usb://16c0:05df?path=1-1.2")
    assert first.state == 1
    second.state = 0
    await switch_on("usb://16c0:05df?bus=1&address=5")
    assert second.state == 1
    with pytest.raises(LinkError, match=r"found: AAAAA, BBBBB"):
        await UsbTransport("usb://16c0:05df?serial=CCCCC", backend=backend).open()
    with pytest.raises(LinkError, match="no USB device"):
        await UsbTransport("usb://16c0:05df?path=2-1", backend=backend).open()


async def test_a_stalled_request_is_a_refusal_not_a_lost_board() -> None:
    board = UsbRelayBoard()
    transport = UsbTransport("usb://16c0:05df", backend=FakeUsbBackend(board))
    await transport.open()
    try:
        transport.write(bytes.fromhex("C0 42 00 00 00 00 01 00"))  # a vendor request: STALL
        assert await transport.read() == bytes.fromhex("C0 42 00 00 00 00 FF FF")
        assert transport.is_open
    finally:
        await transport.close()


# --- the room: scenes drive channels ------------------------------------------------------------

ROOM_TOML = """
[room]
id = "baku/room-1"
name = "Test room"

[devices.screen]
profile = "usb-hid-relay"
port = "usb://16c0:05df?serial=QWERT"
options = { channel = "1", on = "down", off = "up" }

[devices.lights]
profile = "usb-hid-relay"
port = "usb://16c0:05df?serial=QWERT"
options = { channel = "2" }

[scenes.class-start]
label = { az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }
desired = { screen = { relay = "down" }, lights = { relay = "off" } }

[scenes.class-end]
label = { az = "Dərsi bitir", en = "End class", ru = "Завершить занятие" }
desired = { screen = { relay = "up" }, lights = { relay = "on" } }
"""


async def test_a_relay_channel_switched_by_a_scene_reads_back_its_new_state(
    tmp_path: Path,
) -> None:
    board = UsbRelayBoard(ident="QWERT", channels=8, state=0b10)  # lights on, screen up
    backend = FakeUsbBackend(board)
    config = parse_config(ROOM_TOML, "room.toml")
    assert check_config_values(config, ProfileLoader()) == []
    profile = relay_profile()

    def runtime_for(device_id: str, _profile: Profile) -> DeviceRuntime:
        device = config.devices[device_id]
        return DeviceRuntime(
            device_id,
            profile,
            device.port,
            options=device.options,
            transport_factory=usb_factory(backend),
        )

    store = Store(tmp_path / "tribune.db")
    await store.open()
    room = Room(config, store, runtime_factory=runtime_for)
    await room.start()
    try:
        screen, lights = room.runtimes["screen"], room.runtimes["lights"]
        await eventually(lambda: "relay" in screen.state and "relay" in lights.state)
        assert (screen.state["relay"].value, lights.state["relay"].value) == ("up", "on")

        await room.activate_scene("class-start", who="panel")
        await eventually(
            lambda: screen.state["relay"].value == "down" and lights.state["relay"].value == "off"
        )
        assert board.state == 0b01  # channel 1 (screen) on, channel 2 (lights) off
        assert screen.state["relay"].source.value in ("reply", "poll")  # read back, not assumed

        await room.activate_scene("class-end", who="schedule")
        await eventually(
            lambda: screen.state["relay"].value == "up" and lights.state["relay"].value == "on"
        )
        assert board.state == 0b10
        # Two devices on one board share one handle: one open, one claim.
        calls = [call for call, _thread in board.calls]
        assert calls.count("claim_interface") == 1
    finally:
        await room.stop()
        await store.close()


def test_config_check_refuses_values_the_device_does_not_name() -> None:
    text = ROOM_TOML.replace('screen = { relay = "up" }', 'screen = { relay = "on" }').replace(
        'channel = "2"', 'channel = "9"'
    )
    problems = dict(check_config_values(parse_config(text, "room.toml"), ProfileLoader()))
    assert "down, up" in problems[("scenes", "class-end", "desired", "screen", "relay")]
    assert "takes one of 1, 2" in problems[("devices", "lights", "options")]
    wrong_port = ROOM_TOML.replace("usb://16c0:05df?serial=QWERT", "/dev/ttyUSB0", 1)
    problems = dict(check_config_values(parse_config(wrong_port, "room.toml"), ProfileLoader()))
    assert "usb://VID:PID" in problems[("devices", "screen", "port")]


# --- `tribune usb scan` -------------------------------------------------------------------------


async def test_usb_scan_here_says_plainly_that_nothing_was_found(tmp_path: Path) -> None:
    """This machine: no USB bus in sysfs, and libusb-1.0 may not even be installed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tribune",
        "usb",
        "scan",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err.decode()
    if not any(Path("/sys/bus/usb/devices").glob("*")):
        assert out.decode().startswith("no USB devices found")


def test_usb_scan_without_libusb_is_no_devices_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tribune.usbscan
    from tribune.cli import main

    def no_backend(backend: Any = None) -> Any:
        raise LinkError("pyusb found no working libusb-1.0: apt install libusb-1.0-0")

    monkeypatch.setattr(tribune.usbscan, "pyusb_devices", no_backend)
    assert main(["usb", "scan", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out == (
        "no USB devices found (pyusb found no working libusb-1.0: apt install libusb-1.0-0)\n"
    )


def test_usb_scan_names_a_relay_board_and_its_usb_port(tmp_path: Path) -> None:
    board = UsbRelayBoard(ident="QWERT", channels=2, bus=1, ports=(1, 2))
    profiles = [loaded.profile for loaded in ProfileLoader().load_all()]
    (finding,) = scan_usb(pyusb_devices(FakeUsbBackend(board)), profiles, sysfs=tmp_path)
    assert finding.device.product == "USBRelay2"
    assert finding.device.manufacturer == "www.dcttech.com"
    assert finding.profiles == ["usb-hid-relay"]
    assert finding.port == "usb://16c0:05df?path=1-1.2"
    assert "tribune profile probe usb-hid-relay --port 'usb://16c0:05df?path=1-1.2'" in (
        finding.hint
    )


def test_the_room_toml_in_docs_relay_md_checks_clean() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "relay.md").read_text(encoding="utf-8")
    example = docs.split("```toml", 1)[1].split("```", 1)[0]
    text = '[room]\nid = "baku/room-1"\nname = "Docs"\n' + example
    assert check_config_values(parse_config(text, "relay.md"), ProfileLoader()) == []
