"""A fake `/dev/input` for tests, in the style of input-remapper's test patches.

What each part stands for in the real kernel path:

- `FakeKeypad.plug()` creates `<folder>/eventN` (a plain file standing for the character
  device node the kernel creates) and `<folder>/by-id/<link>` (the symlink udev adds), so the
  real inotify watcher sees the device appear; `unplug()` deletes them.
- Every `open()` gets its own pipe: the kernel gives every open fd of `/dev/input/eventN` its
  own queue of `struct input_event` records. `press()`/`release()` write those exact bytes
  (24 on x86-64, then an EV_SYN/SYN_REPORT), read by the same `read_events` code as a real fd.
- `unplug()` closes the pipes' write ends: the reader sees end-of-file where the kernel would
  answer ENODEV; both mean `InputDeviceGoneError`.
- `grab()` is EVIOCGRAB: while one handle holds it only that handle gets events, and a second
  grab fails with EBUSY.
- `set_led()` writes an EV_LED `struct input_event` into a pipe toward the "device", which
  decodes it into `leds`, as a keyboard does with the LED report the kernel sends it.

Thread-safe enough for a CLI test: a test thread may press keys while the CLI's own event loop
reads them (everything crosses through pipes).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from tribune.inputs.source import (
    EV_KEY,
    EV_LED,
    EV_SYN,
    KEY_DOWN,
    KEY_HOLD,
    KEY_UP,
    SYN_REPORT,
    InputAccessError,
    InputDeviceGoneError,
    InputDeviceInfo,
    RawEvent,
    decode_events,
    encode_event,
    read_events,
)
from tribune.inputs.watch import watch_folder


class FakeHandle:
    """One open of a fake device: the read end of its own event pipe."""

    def __init__(self, keypad: FakeKeypad, info: InputDeviceInfo) -> None:
        self._keypad = keypad
        self._info = info
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.closed = False

    @property
    def info(self) -> InputDeviceInfo:
        """What the device is."""
        return self._info

    def events(self) -> AsyncIterator[RawEvent]:
        """The same reader as a real device's fd."""
        return read_events(self.read_fd, self._info.path)

    def grab(self) -> None:
        """EVIOCGRAB: EBUSY if another handle holds the device."""
        self._keypad._grab(self)

    def ungrab(self) -> None:
        """Release EVIOCGRAB: EINVAL if this handle does not hold it."""
        self._keypad._ungrab(self)

    def set_led(self, code: int, on: bool) -> None:
        """An EV_LED write, as the kernel takes it from a process."""
        self._keypad._led_write(self, code, on)

    def close(self) -> None:
        """Close the fd; a grab ends with it."""
        if self.closed:
            return
        self.closed = True
        self._keypad._closed(self)
        os.close(self.read_fd)


class FakeKeypad:
    """A keypad that can be plugged into a `FakeInputSource`, pressed and unplugged."""

    def __init__(
        self,
        name: str = "Fake USB Keypad",
        *,
        vid: int = 0x05A4,
        pid: int = 0x9881,
        keys: Iterable[int] = (),
        leds: Iterable[int] = (),
        by_id: str | None = "usb-Fake_USB_Keypad-event-kbd",
    ) -> None:
        self.name = name
        self.vid = vid
        self.pid = pid
        self.keys = frozenset(keys)
        self.led_codes = frozenset(leds)
        self.by_id = by_id
        self.source: FakeInputSource | None = None
        self.node: str | None = None  # /dev/input/eventN while plugged
        self.handles: list[FakeHandle] = []
        self.grabbed_by: FakeHandle | None = None
        self.grabs = 0  # EVIOCGRAB calls that succeeded, over the keypad's life
        self.opens = 0
        self._leds: dict[int, bool] = {}
        self._led_read, self._led_write_fd = os.pipe()
        os.set_blocking(self._led_read, False)
        self._lock = threading.Lock()

    # --- what the test does --------------------------------------------------------------

    @property
    def plugged(self) -> bool:
        """Whether its node exists."""
        return self.node is not None

    @property
    def link(self) -> str | None:
        """Its by-id path, e.g. `<folder>/by-id/usb-Fake_USB_Keypad-event-kbd`."""
        if self.source is None or self.by_id is None:
            return None
        return str(Path(self.source.folder) / "by-id" / self.by_id)

    def press(self, code: int) -> None:
        """Key down, then SYN_REPORT."""
        self.emit(EV_KEY, code, KEY_DOWN)

    def release(self, code: int) -> None:
        """Key up, then SYN_REPORT."""
        self.emit(EV_KEY, code, KEY_UP)

    def hold(self, code: int) -> None:
        """The kernel's own auto-repeat (value 2)."""
        self.emit(EV_KEY, code, KEY_HOLD)

    def emit(self, type_: int, code: int, value: int) -> None:
        """One event and a SYN_REPORT to every reader (only the grabber while grabbed)."""
        now = time.time()
        data = encode_event(type_, code, value, now) + encode_event(EV_SYN, SYN_REPORT, 0, now)
        with self._lock:
            targets = [self.grabbed_by] if self.grabbed_by is not None else list(self.handles)
        for handle in targets:
            try:
                os.write(handle.write_fd, data)
            except OSError:
                pass  # that reader closed meanwhile

    @property
    def leds(self) -> dict[int, bool]:
        """LED states the device was last told (decoded from EV_LED writes)."""
        pending = b""
        while True:
            try:
                pending += os.read(self._led_read, 4096)
            except BlockingIOError:
                break
        events, _ = decode_events(pending)
        for event in events:
            if event.type == EV_LED:
                self._leds[event.code] = bool(event.value)
        return dict(self._leds)

    def led(self, code: int) -> bool:
        """Whether LED `code` is lit."""
        return self.leds.get(code, False)

    def released(self) -> bool:
        """Nobody has it open (so nobody holds its grab)."""
        return self.grabbed_by is None and not self.handles

    def wait_opened(self, timeout: float = 5.0) -> None:
        """Block (a test thread) until some process has the device open."""
        deadline = time.monotonic() + timeout
        while not self.handles:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody opened {self.name}")
            time.sleep(0.01)

    # --- what the fake "kernel" does -----------------------------------------------------

    def _attach(self, source: FakeInputSource, node: str) -> None:
        self.source = source
        self.node = node

    def _detach(self) -> None:
        self.node = None
        with self._lock:
            handles, self.handles = self.handles, []
            self.grabbed_by = None
        for handle in handles:
            os.close(handle.write_fd)  # the reader gets end-of-file: unplugged

    def _open(self, info: InputDeviceInfo) -> FakeHandle:
        handle = FakeHandle(self, info)
        with self._lock:
            self.handles.append(handle)
            self.opens += 1
        return handle

    def _closed(self, handle: FakeHandle) -> None:
        with self._lock:
            if handle in self.handles:
                self.handles.remove(handle)
                os.close(handle.write_fd)
            if self.grabbed_by is handle:
                self.grabbed_by = None

    def _grab(self, handle: FakeHandle) -> None:
        with self._lock:
            if self.grabbed_by is not None and self.grabbed_by is not handle:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            self.grabbed_by = handle
            self.grabs += 1

    def _ungrab(self, handle: FakeHandle) -> None:
        with self._lock:
            if self.grabbed_by is not handle:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            self.grabbed_by = None

    def _led_write(self, handle: FakeHandle, code: int, on: bool) -> None:
        if handle.closed or handle not in self.handles:
            raise InputDeviceGoneError(f"{handle.info.path}: unplugged")
        os.write(self._led_write_fd, encode_event(EV_LED, code, 1 if on else 0, time.time()))


class FakeInputSource:
    """A fake `/dev/input` in a temporary folder: keypads plugged and unplugged by the test."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder.resolve()  # nodes are compared with realpath()s
        self._numbers = itertools.count(3)  # real PCs have event0..2 for power buttons
        self._plugged: dict[str, FakeKeypad] = {}  # node -> keypad
        self.unreadable: set[str] = set()  # nodes that answer EACCES (no udev rule)

    @property
    def folder(self) -> str:
        """The fake `/dev/input`."""
        return str(self._folder)

    def plug(self, keypad: FakeKeypad) -> str:
        """Create its node (a new eventN each time, as the kernel does) and by-id link."""
        node = str(self._folder / f"event{next(self._numbers)}")
        Path(node).touch()
        if keypad.by_id is not None:
            (self._folder / "by-id").mkdir(exist_ok=True)
            link = self._folder / "by-id" / keypad.by_id
            link.unlink(missing_ok=True)
            link.symlink_to(Path("..") / Path(node).name)
        keypad._attach(self, node)
        self._plugged[node] = keypad
        return node

    def unplug(self, keypad: FakeKeypad) -> None:
        """Remove its node and link; open handles read end-of-file."""
        node = keypad.node
        if node is None:
            return
        self._plugged.pop(node, None)
        if keypad.by_id is not None:
            (self._folder / "by-id" / keypad.by_id).unlink(missing_ok=True)
        Path(node).unlink(missing_ok=True)
        keypad._detach()

    def _info(self, node: str, keypad: FakeKeypad) -> InputDeviceInfo:
        links = (keypad.link,) if keypad.link is not None else ()
        if node in self.unreadable:
            return InputDeviceInfo(node, links=links, error="permission denied")
        return InputDeviceInfo(
            path=node,
            name=keypad.name,
            vid=keypad.vid,
            pid=keypad.pid,
            phys="usb-0000:00:14.0-2/input0",
            links=links,
            keys=keypad.keys,
            leds=keypad.led_codes,
        )

    async def devices(self) -> list[InputDeviceInfo]:
        """The nodes present in the folder, like `EvdevSource.devices`."""
        return [self._info(node, kp) for node, kp in sorted(self._plugged.items())]

    async def open(self, path: str) -> FakeHandle:
        """Open a node or a by-id link."""
        node = await asyncio.to_thread(os.path.realpath, path)
        keypad = self._plugged.get(node)
        if keypad is None:
            raise InputDeviceGoneError(f"{path}: No such device")
        if node in self.unreadable:
            raise InputAccessError(f"{path}: permission denied")
        return keypad._open(self._info(node, keypad))

    def changes(self) -> AsyncIterator[None]:
        """The real watcher, on the fake folder."""
        return watch_folder(self._folder)
