"""`usb scan` against a fake pyusb backend and a fake sysfs and /dev (this machine has no USB).

The fake trees under tmp_path stand for these real kernel paths:

    sys/bus/usb/devices/1-1.2/1-1.2:1.0/ttyUSB0     /sys/bus/usb/devices/... (ftdi_sio, pl2303...)
    sys/bus/usb/devices/3-4/3-4:1.0/tty/ttyACM0     /sys/bus/usb/devices/... (cdc_acm)
    dev/serial/by-id/usb-FTDI_...-if00-port0        /dev/serial/by-id/... (udev's stable links)
    dev/serial/by-path/pci-0000:00:14.0-usb-0:1.2:1.0-port0
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import usb.backend
import usb.util

from tribune.profiles.loader import ProfileLoader
from tribune.usbscan import UsbDevice, pyusb_devices, scan_usb, scan_usb_async


@dataclass
class FakeUsb:
    """One device behind the fake backend: descriptor fields and its string descriptors."""

    vid: int
    pid: int
    bus: int
    ports: tuple[int, ...]
    strings: dict[int, str]  # index -> text (1 maker, 2 product, 3 serial)
    refuses_strings: bool = False  # a device we may not open (no udev permission)


class FakeBackend(usb.backend.IBackend):  # type: ignore[misc]
    """The part of pyusb's backend interface that `usb.core.find` and string reads use."""

    def __init__(self, devices: list[FakeUsb]) -> None:
        self.devices = devices

    def enumerate_devices(self) -> list[FakeUsb]:
        return self.devices

    def get_device_descriptor(self, dev: FakeUsb) -> Any:
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0,
            bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=8,
            idVendor=dev.vid, idProduct=dev.pid, bcdDevice=0x0600,
            iManufacturer=1 if 1 in dev.strings else 0,
            iProduct=2 if 2 in dev.strings else 0,
            iSerialNumber=3 if 3 in dev.strings else 0,
            bNumConfigurations=1, address=len(dev.ports) + 1, bus=dev.bus,
            port_number=dev.ports[-1], port_numbers=dev.ports, speed=2,
        )  # fmt: skip

    def open_device(self, dev: FakeUsb) -> FakeUsb:
        if dev.refuses_strings:
            raise usb.core.USBError("Access denied (insufficient permissions)", errno=13)
        return dev

    def close_device(self, handle: FakeUsb) -> None:
        pass

    def ctrl_transfer(
        self,
        handle: FakeUsb,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        assert bRequest == 6, "GET_DESCRIPTOR only"
        kind, index = wValue >> 8, wValue & 0xFF
        assert kind == usb.util.DESC_TYPE_STRING
        if index == 0:
            payload = bytes([4, 3, 0x09, 0x04])  # LANGID en-US
        else:
            text = handle.strings[index].encode("utf-16-le")
            payload = bytes([len(text) + 2, 3]) + text
        data[: len(payload)] = array.array("B", payload)
        return len(payload)


FTDI = FakeUsb(0x0403, 0x6001, 1, (1, 2), {1: "FTDI", 2: "FT232R USB UART", 3: "A10K1234"})
CDC = FakeUsb(0x2341, 0x0043, 3, (4,), {1: "Arduino", 2: "Relay board"})
KEYBOARD = FakeUsb(0x046D, 0xC31C, 1, (3,), {}, refuses_strings=True)


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys" / "bus" / "usb" / "devices"
    (root / "1-1.2" / "1-1.2:1.0" / "ttyUSB0").mkdir(parents=True)
    (root / "3-4" / "3-4:1.0" / "tty" / "ttyACM0").mkdir(parents=True)
    (root / "1-3" / "1-3:1.0").mkdir(parents=True)  # a keyboard: no tty
    return root


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    root = tmp_path / "dev"
    (root / "serial" / "by-id").mkdir(parents=True)
    (root / "serial" / "by-path").mkdir(parents=True)
    (root / "serial" / "by-id" / "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0").symlink_to(
        "../../ttyUSB0"
    )
    (root / "serial" / "by-path" / "pci-0000:00:14.0-usb-0:1.2:1.0-port0").symlink_to(
        "../../ttyUSB0"
    )
    return root


def test_pyusb_records_come_from_the_backend() -> None:
    devices = list(pyusb_devices(FakeBackend([FTDI, KEYBOARD])))
    assert devices[0] == UsbDevice(
        0x0403, 0x6001, "FTDI", "FT232R USB UART", "A10K1234", bus=1, ports=(1, 2)
    )
    # A device we may not open still shows, without its strings.
    assert (devices[1].ids, devices[1].product) == ("046d:c31c", None)


def test_an_ftdi_cable_is_a_serial_adapter_with_a_stable_path(sysfs: Path, dev: Path) -> None:
    profiles = [p.profile for p in ProfileLoader().load_all()]
    devices = pyusb_devices(FakeBackend([FTDI, CDC, KEYBOARD]))
    ftdi, cdc, keyboard = scan_usb(devices, profiles, sysfs=sysfs, dev=dev)

    assert ftdi.ttys == ["/dev/ttyUSB0"]
    by_id = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"
    assert ftdi.stable == [by_id, "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1.2:1.0-port0"]
    assert ftdi.chip == "FTDI"
    assert "epson-escvp21" in ftdi.profiles
    assert ftdi.hint.startswith(f"serial adapter (FTDI): try `tribune detect --port {by_id}`")

    assert cdc.ttys == ["/dev/ttyACM0"]
    assert cdc.hint == "provides /dev/ttyACM0: try `tribune detect --port /dev/ttyACM0`"
    assert (keyboard.ttys, keyboard.hint) == ([], "")
    assert ftdi.to_json()["vid"] == "0403"


def test_a_device_a_profile_declares_is_named(sysfs: Path, dev: Path) -> None:
    board = ProfileLoader().load("smart-board").profile
    declared = board.model_copy(
        update={"usb": [*board.usb, type(board.usb[0])(vid="0b8c", pid="0001")]}
    )
    found = scan_usb(
        [UsbDevice(0x0B8C, 0x0001, "SMART", "Board")], [declared], sysfs=sysfs, dev=dev
    )
    assert found[0].profiles == ["smart-board"]
    assert found[0].hint.startswith("profile smart-board: check with `tribune profile probe")


async def test_the_async_scan_runs_off_the_loop(sysfs: Path, dev: Path) -> None:
    import threading

    loop_thread = threading.get_ident()
    seen: list[int] = []

    def source() -> list[UsbDevice]:
        seen.append(threading.get_ident())
        return list(pyusb_devices(FakeBackend([FTDI])))

    found = await scan_usb_async(source, sysfs=sysfs, dev=dev)
    assert found[0].ttys == ["/dev/ttyUSB0"]
    assert seen
    assert seen[0] != loop_thread
