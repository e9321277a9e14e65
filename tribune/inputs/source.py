"""The evdev seam: what the key service needs from Linux input devices, and nothing more.

An `InputSource` lists devices (`/dev/input/eventN`: name, vid:pid, the keys and LEDs they
have, their `/dev/input/by-id` links), opens one, and says when the listing may have changed.
An open `InputHandle` yields `RawEvent`s, grabs the device (EVIOCGRAB) and sets its LEDs
(EV_LED writes). `EvdevSource` (tribune/inputs/evdev_source.py) is the real one;
`FakeInputSource` (tribune/inputs/fake.py) feeds pipes with the same bytes, for tests.

Both read events the same way: the kernel hands out `struct input_event` records on a
non-blocking file descriptor, so `read_events` waits for it on the event loop and decodes
them; nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import struct
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from tribune.errors import LinkClosedError, LinkError

# struct input_event on 64-bit Linux: struct timeval (two longs), u16 type, u16 code, s32 value.
EVENT_FORMAT = "llHHi"
EVENT_SIZE = struct.calcsize(EVENT_FORMAT)
EV_SYN = 0x00
EV_KEY = 0x01
EV_LED = 0x11
SYN_REPORT = 0
# EV_KEY values: the kernel's own auto-repeat sends 2 while a key is held.
KEY_UP, KEY_DOWN, KEY_HOLD = 0, 1, 2


class RawEvent(NamedTuple):
    """One `struct input_event`: type (EV_KEY...), code (KEY_F1...), value, kernel time."""

    type: int
    code: int
    value: int
    time: float


def encode_event(type_: int, code: int, value: int, at: float = 0.0) -> bytes:
    """The bytes of one `struct input_event`, as the kernel writes and reads them."""
    seconds = int(at)
    return struct.pack(EVENT_FORMAT, seconds, int((at - seconds) * 1_000_000), type_, code, value)


def decode_events(data: bytes) -> tuple[list[RawEvent], bytes]:
    """Whole events in `data`, and the bytes of an incomplete one left over."""
    whole = len(data) - len(data) % EVENT_SIZE
    events = [
        RawEvent(type_, code, value, sec + usec / 1_000_000)
        for sec, usec, type_, code, value in struct.iter_unpack(EVENT_FORMAT, data[:whole])
    ]
    return events, data[whole:]


class InputDeviceGoneError(LinkClosedError):
    """The input device was unplugged (read gives ENODEV, or the fake's pipe closed)."""


class InputAccessError(LinkError):
    """The input device exists but this user may not open it (see systemd/60-tribune-input)."""


@dataclass(frozen=True, slots=True)
class InputDeviceInfo:
    """One input device as `tribune buttons list` shows it."""

    path: str  # /dev/input/event5
    name: str = ""
    vid: int = 0
    pid: int = 0
    phys: str = ""
    links: tuple[str, ...] = ()  # /dev/input/by-id/..., /dev/input/by-path/... pointing here
    keys: frozenset[int] = frozenset()  # EV_KEY codes it can send
    leds: frozenset[int] = frozenset()  # EV_LED codes it has
    error: str | None = None  # why it could not be opened (permission denied...)

    @property
    def ids(self) -> str:
        """`05a4:9881`."""
        return f"{self.vid:04x}:{self.pid:04x}"

    def known_as(self, path: str) -> bool:
        """Whether `path` (a node or a by-id/by-path link) names this device."""
        return path == self.path or path in self.links


class InputHandle(Protocol):
    """An open input device."""

    @property
    def info(self) -> InputDeviceInfo:
        """What the device is."""
        ...

    def events(self) -> AsyncIterator[RawEvent]:
        """Its events as they come; `InputDeviceGoneError` when it is unplugged."""
        ...

    def grab(self) -> None:
        """Take it for this process alone (EVIOCGRAB): keys stop reaching the desktop."""
        ...

    def ungrab(self) -> None:
        """Give it back to the desktop."""
        ...

    def set_led(self, code: int, on: bool) -> None:
        """Light or clear one of its LEDs (an EV_LED write)."""
        ...

    def close(self) -> None:
        """Close it (a grab ends with it)."""
        ...


class InputSource(Protocol):
    """Where input devices come from: `/dev/input`, or the tests' fake."""

    @property
    def folder(self) -> str:
        """The folder it lists (`/dev/input`), for messages."""
        ...

    async def devices(self) -> list[InputDeviceInfo]:
        """The event devices there now (unreadable ones too, with their `error`)."""
        ...

    async def open(self, path: str) -> InputHandle:
        """Open a device by node or link; `InputAccessError`, `InputDeviceGoneError`."""
        ...

    def changes(self) -> AsyncIterator[None]:
        """Yields whenever the listing may have changed (a device plugged or unplugged)."""
        ...


async def read_events(fd: int, what: str) -> AsyncGenerator[RawEvent, None]:
    """Events from a non-blocking fd, waited for on the event loop (never a blocking read)."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    pending = b""
    try:
        while True:
            await readable.wait()
            readable.clear()
            while True:
                try:
                    chunk = os.read(fd, EVENT_SIZE * 64)
                except BlockingIOError:
                    break
                except OSError as exc:
                    # ENODEV: the kernel's answer to a read from an unplugged device.
                    reason = "unplugged" if exc.errno == errno.ENODEV else exc.strerror
                    raise InputDeviceGoneError(f"{what}: {reason}") from None
                if not chunk:
                    raise InputDeviceGoneError(f"{what}: unplugged")
                events, pending = decode_events(pending + chunk)
                for event in events:
                    yield event
    finally:
        with contextlib.suppress(ValueError, OSError):  # the fd may be closed already
            loop.remove_reader(fd)
