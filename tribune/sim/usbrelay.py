"""A USB HID relay board (USBRelay1..8) behind a fake pyusb backend, for tests and demos.

Written from the boards' protocol as the open firmware u1f35c/usb-relay-firmware (main.c) and
pavel-a/usb-relay-hid (doc/hidrelay.md, lib/usb_relay_lib.c) implement it, not from tribune's
profile: HID class requests on the control pipe, feature report 0 of 8 bytes; SET_REPORT
`[FF, n]` channel n on, `[FD, n]` off, `[FE]` all on, `[FC]` all off, `[FA, id...]` new id;
GET_REPORT answers the 5-character id, a 0, a 0 and the channel bitmask (bit 0 = channel 1).
The firmware takes any class request, whatever its recipient; anything else is a STALL.

`FakeUsbBackend` is a `usb.backend.IBackend`: pass it as `backend=` to pyusb (`usb.core.find`,
`UsbTransport(url, backend=...)`, `pyusb_devices(backend)`). It stands for libusb over usbfs
(`/dev/bus/usb/BBB/DDD`): the kernel's usbhid driver starts bound to interface 0 (as on a real
PC, where it makes `/dev/hidrawN`), so a HID request to the interface works only after
`detach_kernel_driver`, and claiming a bound interface fails with EBUSY as usbfs does. A board
that is unplugged fails every call on its handles with ENODEV (libusb NO_DEVICE); it can be
pulled out in the middle of a transfer, and plugged back in at a new address as the kernel
would give it. Every call is recorded with the thread it ran on.
"""

from __future__ import annotations

import array
import errno
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

VENDOR_ID, PRODUCT_ID = 0x16C0, 0x05DF
MANUFACTURER = "www.dcttech.com"

GET_DESCRIPTOR, GET_REPORT, SET_REPORT = 0x06, 0x01, 0x09
TYPE_MASK, TYPE_CLASS = 0x60, 0x20
DESCRIPTOR_STRING = 3
CMD_ALL_ON, CMD_ALL_OFF, CMD_ON, CMD_OFF, CMD_SET_ID = 0xFE, 0xFC, 0xFF, 0xFD, 0xFA


@dataclass
class UsbRelayBoard:
    """One board: its id, its channels, and where it is plugged in."""

    ident: str = "QWERT"
    channels: int = 8
    bus: int = 1
    ports: tuple[int, ...] = (1, 2)
    address: int = 4
    state: int = 0  # bit 0 = channel 1
    plugged: bool = True
    kernel_driver: bool = True  # usbhid bound to interface 0 (it made /dev/hidrawN)
    denied: bool = False  # no udev rule: opening the device node is refused
    unplug_in_transfer: bool = False  # the next HID transfer finds the board pulled out
    calls: list[tuple[str, str]] = field(default_factory=list)  # (call, thread name)
    generation: int = 0  # bumped by every replug: older handles are dead

    @property
    def product(self) -> str:
        """`USBRelay8`: the product string names the channel count."""
        return f"USBRelay{self.channels}"

    def channel(self, number: int) -> bool:
        """Whether channel `number` (1..8) is on."""
        return bool(self.state >> (number - 1) & 1)

    def unplug(self) -> None:
        """Pull the board out: it leaves the bus, its handles fail with ENODEV."""
        self.plugged = False
        self.state = 0  # relays drop without USB power

    def replug(self) -> None:
        """Plug it back in: a new address, usbhid bound again, every channel off."""
        self.plugged = True
        self.generation += 1
        self.address += 1
        self.kernel_driver = True

    def set_report(self, data: bytes) -> None:
        """What the firmware does with a SET_REPORT."""
        command = data[0] if data else 0
        mask = (1 << self.channels) - 1
        if command == CMD_ALL_ON:
            self.state = mask
        elif command == CMD_ALL_OFF:
            self.state = 0
        elif command in (CMD_ON, CMD_OFF) and len(data) > 1 and 1 <= data[1] <= self.channels:
            bit = 1 << (data[1] - 1)
            self.state = self.state | bit if command == CMD_ON else self.state & ~bit
        elif command == CMD_SET_ID and len(data) >= 6:
            self.ident = bytes(data[1:6]).decode("ascii", "replace")

    def get_report(self) -> bytes:
        """The firmware's answer to GET_REPORT: id, 0, 0, channel bitmask."""
        return self.ident.encode("ascii")[:5].ljust(5, b"\0") + bytes([0, 0, self.state])


@dataclass(eq=False)
class _Handle:
    board: UsbRelayBoard
    generation: int
    claimed: set[int] = field(default_factory=set)


def _usb_error(code: int, text: str) -> usb.core.USBError:
    return usb.core.USBError(text, errno=code)


class FakeUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """pyusb's backend interface over simulated relay boards."""

    def __init__(self, *boards: UsbRelayBoard) -> None:
        self.boards = list(boards)

    def _record(self, board: UsbRelayBoard, call: str) -> None:
        board.calls.append((call, threading.current_thread().name))

    def _alive(self, handle: _Handle) -> UsbRelayBoard:
        board = handle.board
        if not board.plugged or handle.generation != board.generation:
            raise _usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        return board

    # --- enumeration --------------------------------------------------------------------------

    def enumerate_devices(self) -> list[UsbRelayBoard]:
        for board in self.boards:
            self._record(board, "enumerate")
        return [board for board in self.boards if board.plugged]

    def get_device_descriptor(self, board: UsbRelayBoard) -> Any:
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=0x0110, bDeviceClass=0,
            bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=8,
            idVendor=VENDOR_ID, idProduct=PRODUCT_ID, bcdDevice=0x0100,
            iManufacturer=1, iProduct=2, iSerialNumber=0, bNumConfigurations=1,
            address=board.address, bus=board.bus, port_number=board.ports[-1],
            port_numbers=board.ports, speed=1,
        )  # fmt: skip

    # --- handles and interfaces -----------------------------------------------------------------

    def open_device(self, board: UsbRelayBoard) -> _Handle:
        self._record(board, "open")
        if not board.plugged:
            raise _usb_error(errno.ENODEV, "No such device (it may have been disconnected)")
        if board.denied:
            raise _usb_error(errno.EACCES, "Access denied (insufficient permissions)")
        return _Handle(board, board.generation)

    def close_device(self, handle: _Handle) -> None:
        self._record(handle.board, "close")

    def is_kernel_driver_active(self, handle: _Handle, interface: int) -> bool:
        board = self._alive(handle)
        self._record(board, "is_kernel_driver_active")
        return interface == 0 and board.kernel_driver

    def detach_kernel_driver(self, handle: _Handle, interface: int) -> None:
        board = self._alive(handle)
        self._record(board, "detach_kernel_driver")
        board.kernel_driver = False

    def attach_kernel_driver(self, handle: _Handle, interface: int) -> None:
        board = self._alive(handle)
        self._record(board, "attach_kernel_driver")
        board.kernel_driver = True

    def claim_interface(self, handle: _Handle, interface: int) -> None:
        board = self._alive(handle)
        self._record(board, "claim_interface")
        if interface != 0:
            raise _usb_error(errno.ENOENT, "Entity not found")
        if board.kernel_driver:
            raise _usb_error(errno.EBUSY, "Resource busy")  # usbhid holds it
        handle.claimed.add(interface)

    def release_interface(self, handle: _Handle, interface: int) -> None:
        board = self._alive(handle)
        self._record(board, "release_interface")
        handle.claimed.discard(interface)

    # --- the control pipe -----------------------------------------------------------------------

    def ctrl_transfer(
        self,
        handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: array.array[int],
        timeout: int,
    ) -> int:
        board = self._alive(handle)
        self._record(board, "ctrl_transfer")
        if bRequest == GET_DESCRIPTOR and bmRequestType == 0x80:
            return self._string(board, wValue, data)
        if bmRequestType & TYPE_MASK != TYPE_CLASS or bRequest not in (GET_REPORT, SET_REPORT):
            raise _usb_error(errno.EPIPE, "Pipe error")  # the firmware STALLs it
        if bmRequestType & 0x1F == 0x01 and 0 not in handle.claimed:
            raise _usb_error(errno.EBUSY, "Resource busy")  # usbfs: claim the interface first
        if board.unplug_in_transfer:
            board.unplug_in_transfer = False
            board.unplug()
            raise _usb_error(errno.EIO, "Input/Output Error")  # pulled out mid-transfer
        if bRequest == SET_REPORT:
            board.set_report(bytes(data))
            return len(data)
        report = board.get_report()[: len(data)]
        data[: len(report)] = array.array("B", report)
        return len(report)

    @staticmethod
    def _string(board: UsbRelayBoard, value: int, data: array.array[int]) -> int:
        kind, index = value >> 8, value & 0xFF
        if kind != DESCRIPTOR_STRING or index not in (0, 1, 2):
            raise _usb_error(errno.EPIPE, "Pipe error")
        if index == 0:
            payload = bytes([4, 3, 0x09, 0x04])  # LANGID en-US
        else:
            text = (MANUFACTURER if index == 1 else board.product).encode("utf-16-le")
            payload = bytes([len(text) + 2, 3]) + text
        payload = payload[: len(data)]
        data[: len(payload)] = array.array("B", payload)
        return len(payload)
