"""USB devices spoken to with control transfers (HID feature reports): `usb://VID:PID?...`.

The port names the device by vendor:product id and, when several are plugged in, one of:

    usb://16c0:05df?serial=QWERT      its USB serial-number string; a device without one (the
                                      USBRelay boards) is matched on the id it keeps at the start
                                      of HID feature report 0, which is how those boards differ
    usb://16c0:05df?path=1-1.2        the socket it is plugged into (bus 1, hub port 1, port 2:
                                      the sysfs name `tribune usb scan` shows); survives replugs
    usb://16c0:05df?bus=1&address=4   bus and address: changes with every replug (quick tests)

`timeout=MS` bounds each transfer (default 1000). Bytes are control transfers framed by
`UsbControlCodec`: a write is one SETUP packet and its OUT data; each transfer is answered with
its SETUP packet (wLength = bytes moved) and the IN data. The kernel path is usbfs
(`/dev/bus/usb/BBB/DDD`) through libusb: a HID request to an interface first takes that
interface from the kernel's usbhid driver (its hidraw node goes away until we let go).

Every pyusb call (find, detach, transfer, dispose) runs on one worker thread, `usb`, never on
the event loop; one thread also keeps transfers to a board in order. Transports that open the
same device (two room devices on two channels of one relay board) share one handle, since
usbfs lets only one handle claim an interface. A device that vanishes (libusb NO_DEVICE, IO)
closes the link, and the runtime's reconnect finds it again when it is back; a transfer timeout
is no answer (the runtime retries, then calls the device offline); a STALL is a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tribune.drivers.codecs.usb import DIRECTION_IN, STALLED, setup_fields, setup_packet
from tribune.drivers.transport import _EOF, Transport
from tribune.errors import ConfigError, LinkClosedError, LinkError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 1000
RECIPIENT_MASK, RECIPIENT_INTERFACE = 0x1F, 0x01
TYPE_MASK, TYPE_VENDOR = 0x60, 0x40
# HID GET_REPORT of feature report 0 (HID 1.11, 7.2.1): where a USBRelay board keeps its id.
HID_GET_FEATURE_0 = (0xA1, 0x01, 0x0300, 0, 8)
ID_LENGTH = 5

_IDS = re.compile(r"([0-9a-fA-F]{4}):([0-9a-fA-F]{4})")
_PATH = re.compile(r"[0-9]{1,3}-[0-9]{1,3}(\.[0-9]{1,3}){0,6}")
_KEYS = ("serial", "path", "bus", "address", "timeout")

# One thread for every pyusb call of the process: none blocks the event loop, and transfers to
# one device never overlap. A transfer is bounded by its timeout, so one hung board delays the
# others by at most that.
USB_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usb")


@dataclass(frozen=True, slots=True)
class UsbPort:
    """A parsed `usb://` port: which device, and how long a transfer may take."""

    url: str
    vid: int
    pid: int
    serial: str | None = None
    path: str | None = None
    bus: int | None = None
    address: int | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def describe(self) -> str:
        """`16c0:05df serial QWERT`, for messages."""
        where = [f"{self.vid:04x}:{self.pid:04x}"]
        if self.serial is not None:
            where.append(f"serial {self.serial}")
        if self.path is not None:
            where.append(f"at {self.path}")
        if self.bus is not None:
            where.append(f"bus {self.bus}")
        if self.address is not None:
            where.append(f"address {self.address}")
        return " ".join(where)

    def located(self, device: Any) -> bool:
        """Whether a pyusb device is plugged where the port says (serial is checked later)."""
        if self.bus is not None and device.bus != self.bus:
            return False
        if self.address is not None and device.address != self.address:
            return False
        return self.path is None or sysfs_name(device) == self.path


def parse_usb_url(url: str) -> UsbPort:
    """The device a `usb://VID:PID?...` port names; `ConfigError` for a malformed one."""
    parts = urlsplit(url)
    ids = _IDS.fullmatch(parts.netloc)
    if parts.scheme != "usb" or ids is None or parts.path not in ("", "/"):
        raise ConfigError(f"bad USB port {url!r}: want usb://VID:PID, e.g. usb://16c0:05df")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{url}: unknown {', '.join(unknown)} (use {', '.join(_KEYS)})")
    one = {key: values[-1] for key, values in query.items()}
    for key in ("bus", "address", "timeout"):
        if key in one and not one[key].isdigit():
            raise ConfigError(f"{url}: {key} must be a number")
    if "path" in one and not _PATH.fullmatch(one["path"]):
        raise ConfigError(f"{url}: path is the sysfs name of the socket, e.g. 1-1.2")
    if "serial" in one and not one["serial"]:
        raise ConfigError(f"{url}: serial is empty")
    timeout = int(one.get("timeout", DEFAULT_TIMEOUT_MS))
    if not 10 <= timeout <= 60_000:
        raise ConfigError(f"{url}: timeout is in milliseconds, 10..60000")
    return UsbPort(
        url,
        int(ids.group(1), 16),
        int(ids.group(2), 16),
        serial=one.get("serial"),
        path=one.get("path"),
        bus=int(one["bus"]) if "bus" in one else None,
        address=int(one["address"]) if "address" in one else None,
        timeout_ms=timeout,
    )


def sysfs_name(device: Any) -> str | None:
    """The kernel's name for a pyusb device's socket, `1-1.2`, or None when unknown."""
    ports = tuple(device.port_numbers or ())
    if device.bus is None or not ports:
        return None
    return f"{device.bus}-{'.'.join(str(p) for p in ports)}"


# --- the worker thread's side: nothing below runs on the event loop ----------------------------


@dataclass(eq=False)
class _OpenDevice:
    """One opened device, shared by every transport on it (used on the `usb` thread only)."""

    device: Any  # usb.core.Device
    key: tuple[int, int | None, int | None]
    users: int = 0
    gone: bool = False
    checked: set[int] = field(default_factory=set)  # interfaces taken from the kernel, if bound
    detached: set[int] = field(default_factory=set)


_open_devices: dict[tuple[int, int | None, int | None], _OpenDevice] = {}


def _attach(port: UsbPort, backend: Any) -> _OpenDevice:
    """Find the device the port names and count one more user of it."""
    import usb.core

    try:
        found = list(
            usb.core.find(find_all=True, idVendor=port.vid, idProduct=port.pid, backend=backend)
        )
    except usb.core.NoBackendError as exc:
        raise LinkError(
            f"{port.url}: no USB backend: install libusb-1.0 (apt install libusb-1.0-0)"
        ) from exc
    except usb.core.USBError as exc:
        raise LinkError(f"{port.url}: cannot list USB devices: {exc}") from exc
    candidates = [device for device in found if port.located(device)]
    if not candidates:
        raise LinkError(
            f"{port.url}: no USB device {port.describe()} (plugged in? `tribune usb scan` lists "
            "what is)"
        )
    others: list[str] = []
    for device in candidates:
        key = (id(backend), device.bus, device.address)
        opened = _open_devices.get(key)
        fresh = opened is None or opened.gone
        if opened is None or opened.gone:
            opened = _OpenDevice(device, key)
        if port.serial is not None:
            try:
                ident = _identity(opened)
            except usb.core.USBError as exc:
                if fresh:
                    _dispose(opened)
                if exc.errno == errno.EACCES:
                    raise _permission_error(port) from exc
                others.append(f"? ({exc})")
                continue
            if ident != port.serial:
                others.append(ident)
                if fresh:
                    _dispose(opened)
                continue
        _open_devices[key] = opened
        opened.users += 1
        return opened
    raise LinkError(
        f"{port.url}: no {port.vid:04x}:{port.pid:04x} with serial {port.serial} "
        f"(found: {', '.join(others)})"
    )


def _permission_error(port: UsbPort) -> LinkError:
    return LinkError(
        f"{port.url}: permission denied: install systemd/61-tribune-usbrelay.rules and put the "
        "service user in the `tribune` group (docs/relay.md)"
    )


def _identity(opened: _OpenDevice) -> str:
    """The device's serial-number string, or a USBRelay board's id from feature report 0."""
    import usb.util

    device = opened.device
    if device.iSerialNumber:
        with contextlib.suppress(ValueError):  # no language ids: fall back to the report
            text = usb.util.get_string(device, device.iSerialNumber)
            if text:
                return str(text).strip()
    report = bytes(_control(opened, *HID_GET_FEATURE_0, DEFAULT_TIMEOUT_MS))
    return report[:ID_LENGTH].decode("ascii", "replace")


def _control(
    opened: _OpenDevice,
    request_type: int,
    request: int,
    value: int,
    index: int,
    data_or_length: bytes | int,
    timeout_ms: int,
) -> Any:
    """One control transfer; a class request to an interface first takes it from the kernel."""
    if (
        request_type & RECIPIENT_MASK == RECIPIENT_INTERFACE
        and request_type & TYPE_MASK != TYPE_VENDOR
    ):
        _take_interface(opened, index & 0xFF)
    return opened.device.ctrl_transfer(
        request_type, request, value, index, data_or_length, timeout_ms
    )


def _take_interface(opened: _OpenDevice, interface: int) -> None:
    """Detach usbhid from the interface (once), so libusb may claim it."""
    if interface in opened.checked:
        return
    try:
        if opened.device.is_kernel_driver_active(interface):
            opened.device.detach_kernel_driver(interface)
            opened.detached.add(interface)
    except NotImplementedError:  # not Linux: there is no kernel driver to take it from
        pass
    opened.checked.add(interface)


def _transfer(opened: _OpenDevice, request: bytes, timeout_ms: int) -> bytes:
    """Run one encoded request; the answer as `UsbControlCodec` decodes it."""
    import usb.core

    request_type, code, value, index, length = setup_fields(request)
    try:
        if request_type & DIRECTION_IN:
            data = bytes(_control(opened, request_type, code, value, index, length, timeout_ms))
            return setup_packet(request_type, code, value, index, len(data)) + data
        written = _control(opened, request_type, code, value, index, request[8:], timeout_ms)
        return setup_packet(request_type, code, value, index, int(written))
    except usb.core.USBTimeoutError:
        raise
    except usb.core.USBError as exc:
        if exc.errno == errno.EPIPE:  # STALL: the device refused this request
            return setup_packet(request_type, code, value, index, STALLED)
        opened.gone = True  # unplugged, or an I/O error: a new handle is needed
        raise


def _release(opened: _OpenDevice) -> None:
    """One user fewer; the last one gives the interfaces back to the kernel and closes."""
    opened.users -= 1
    if opened.users > 0:
        return
    if _open_devices.get(opened.key) is opened:
        del _open_devices[opened.key]
    _dispose(opened)


def _dispose(opened: _OpenDevice) -> None:
    import usb.core
    import usb.util

    device = opened.device
    for interface in sorted(opened.detached):
        with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
            usb.util.release_interface(device, interface)
            device.attach_kernel_driver(interface)  # its hidraw node comes back
    with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
        usb.util.dispose_resources(device)


# --- the event loop's side ---------------------------------------------------------------------


class UsbTransport(Transport):
    """Control transfers to one USB device; every pyusb call on the `usb` thread."""

    def __init__(self, url: str, *, backend: Any = None) -> None:
        """`backend`: a pyusb backend (default: libusb-1.0); tests pass a fake `IBackend`."""
        super().__init__(url)
        self.port = parse_usb_url(url)
        self.backend = backend
        self._device: _OpenDevice | None = None

    async def open(self) -> None:
        self._reset_queue()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(USB_THREAD, _attach, self.port, self.backend)
        try:
            device = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The open timed out while the thread worked: let go of what it finds.
            future.add_done_callback(_release_when_found)
            raise
        self._device = device
        self._closed = False

    def write(self, data: bytes) -> None:
        device = self._device
        if self._closed or device is None:
            raise LinkClosedError(f"{self.url}: link is closed")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            USB_THREAD, _transfer, device, bytes(data), self.port.timeout_ms
        )
        future.add_done_callback(self._answered(device))

    def _answered(self, device: _OpenDevice) -> Callable[[asyncio.Future[bytes]], None]:
        def done(future: asyncio.Future[bytes]) -> None:
            if future.cancelled() or self._device is not device or self._closed:
                return
            exc = future.exception()
            if exc is None:
                self._queue.put_nowait(future.result())
                return
            import usb.core

            if isinstance(exc, usb.core.USBTimeoutError):
                log.info("%s: no answer within %d ms", self.url, self.port.timeout_ms)
                return  # silence: the request times out, the runtime retries
            if isinstance(exc, usb.core.USBError):
                log.info("%s: transfer failed: %s", self.url, exc)
            else:
                log.error("%s: transfer failed", self.url, exc_info=exc)
            self._queue.put_nowait(_EOF)  # the device is gone: the link closes, then reconnects

        return done

    async def close(self) -> None:
        self._closed = True
        device, self._device = self._device, None
        if device is not None:
            await asyncio.get_running_loop().run_in_executor(USB_THREAD, _release, device)


def _release_when_found(future: asyncio.Future[_OpenDevice]) -> None:
    if not future.cancelled() and future.exception() is None:
        USB_THREAD.submit(_release, future.result())
