"""`tribune usb scan`: what is plugged into the USB ports, and what to do with it.

Devices are read through one seam, `pyusb_devices()` (an iterator of `UsbDevice` records from
pyusb), so tests feed a fake `usb.backend.IBackend`. The tty a device provides comes from sysfs
(`/sys/bus/usb/devices/<bus>-<ports>/<bus>-<ports>:<cfg>.<if>/ttyUSB0`, or `.../tty/ttyACM0` for
CDC-ACM), and a stable path from udev's `/dev/serial/by-id` and `/dev/serial/by-path` links.
USB access blocks: call `scan_usb` from a thread (`scan_usb_async` does) and never on a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribune.errors import LinkError
from tribune.profiles.schema import Profile

log = logging.getLogger(__name__)

SYSFS_USB = Path("/sys/bus/usb/devices")
DEV = Path("/dev")

# USB-serial bridge chips by vendor id: what a projector's RS-232 cable usually shows up as.
SERIAL_CHIPS: dict[int, str] = {
    0x0403: "FTDI",
    0x067B: "Prolific PL2303",
    0x10C4: "Silicon Labs CP210x",
    0x1A86: "WCH CH340/CH341",
    0x0557: "ATEN",
    0x04E2: "Exar",
    0x2478: "Tripp Lite Keyspan",
}


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """One USB device as the bus reports it."""

    vid: int
    pid: int
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    bus: int | None = None
    ports: tuple[int, ...] = ()  # the port chain from the root hub, e.g. (1, 2) for 1-1.2

    @property
    def ids(self) -> str:
        """`0403:6001`."""
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def sysfs_name(self) -> str | None:
        """The kernel's name for the device, e.g. `1-1.2` (None for a root hub)."""
        if self.bus is None or not self.ports:
            return None
        return f"{self.bus}-{'.'.join(str(p) for p in self.ports)}"


@dataclass(slots=True)
class UsbFinding:
    """A device, the ttys it provides, stable paths to them, and a hint."""

    device: UsbDevice
    ttys: list[str] = field(default_factory=list)  # /dev/ttyUSB0
    stable: list[str] = field(default_factory=list)  # /dev/serial/by-id/..., by-path/...
    chip: str | None = None
    profiles: list[str] = field(default_factory=list)
    hint: str = ""
    usb_port: str | None = None  # usb://VID:PID?path=... for a device a USB profile drives

    @property
    def port(self) -> str | None:
        """What to give `--port`: a usb:// port, a stable link, else the tty."""
        if self.usb_port is not None:
            return self.usb_port
        if self.stable:
            return self.stable[0]
        return self.ttys[0] if self.ttys else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = self.device
        return {
            "vid": f"{d.vid:04x}",
            "pid": f"{d.pid:04x}",
            "manufacturer": d.manufacturer,
            "product": d.product,
            "serial": d.serial,
            "bus": d.bus,
            "sysfs": d.sysfs_name,
            "ttys": self.ttys,
            "stable_paths": self.stable,
            "port": self.port,
            "chip": self.chip,
            "profiles": self.profiles,
            "hint": self.hint,
        }


def pyusb_devices(backend: Any = None) -> Iterator[UsbDevice]:
    """Every device pyusb sees (through `backend`, or the default libusb one)."""
    import usb.core

    try:
        found = list(usb.core.find(find_all=True, backend=backend))
    except usb.core.NoBackendError as exc:
        raise LinkError("pyusb found no working libusb-1.0: apt install libusb-1.0-0") from exc
    for dev in found:
        yield UsbDevice(
            vid=int(dev.idVendor),
            pid=int(dev.idProduct),
            manufacturer=_string(dev, "manufacturer"),
            product=_string(dev, "product"),
            serial=_string(dev, "serial_number"),
            bus=dev.bus,
            ports=tuple(dev.port_numbers or ()),
        )


def _string(dev: Any, attribute: str) -> str | None:
    """A string descriptor, or None when the device will not say (no permission, no string)."""
    import usb.core

    try:
        value = getattr(dev, attribute)
    except (usb.core.USBError, ValueError, NotImplementedError) as exc:
        log.debug("%04x:%04x: no %s: %s", dev.idVendor, dev.idProduct, attribute, exc)
        return None
    return str(value).strip() if value else None


def ttys_of(name: str, sysfs: Path = SYSFS_USB) -> list[str]:
    """Ttys the device `name` (e.g. `1-1.2`) provides, from its interfaces in sysfs."""
    found: list[str] = []
    device = sysfs / name
    for interface in sorted(device.glob(f"{name}:*")):
        # usb-serial drivers (ftdi_sio, pl2303, cp210x, ch341): <interface>/ttyUSB0
        # cdc_acm: <interface>/tty/ttyACM0
        for tty in (*sorted(interface.glob("tty[A-Z]*")), *sorted(interface.glob("tty/tty*"))):
            found.append(f"/dev/{tty.name}")
    return found


def stable_paths(tty: str, dev: Path = DEV) -> list[str]:
    """udev's /dev/serial/by-id and by-path links that point at `tty`, by-id first."""
    paths: list[str] = []
    for kind in ("by-id", "by-path"):
        folder = dev / "serial" / kind
        if not folder.is_dir():
            continue
        for link in sorted(folder.iterdir()):
            try:
                target = link.readlink() if link.is_symlink() else None
            except OSError:
                continue
            if target is not None and target.name == Path(tty).name:
                paths.append(f"/dev/serial/{kind}/{link.name}")
    return paths


def profiles_by_usb_id(profiles: Iterable[Profile]) -> dict[str, list[str]]:
    """`"0403:6001"` -> ids of the profiles that declare it under `usb:`."""
    table: dict[str, list[str]] = {}
    for profile in profiles:
        for usb_id in profile.usb:
            table.setdefault(f"{usb_id.vid}:{usb_id.pid}", []).append(profile.id)
    return table


def scan_usb(
    devices: Iterable[UsbDevice],
    profiles: Sequence[Profile] = (),
    *,
    sysfs: Path = SYSFS_USB,
    dev: Path = DEV,
) -> list[UsbFinding]:
    """What each device is and what to do with it."""
    by_id = profiles_by_usb_id(profiles)
    usb_native = {profile.id for profile in profiles if profile.codec == "usb"}
    findings: list[UsbFinding] = []
    for device in devices:
        finding = UsbFinding(device)
        if device.sysfs_name is not None:
            finding.ttys = ttys_of(device.sysfs_name, sysfs)
        for tty in finding.ttys:
            finding.stable += stable_paths(tty, dev)
        finding.chip = SERIAL_CHIPS.get(device.vid)
        finding.profiles = by_id.get(device.ids, [])
        if any(profile in usb_native for profile in finding.profiles):
            # Driven over USB itself (a relay board): its port is where it is plugged in.
            where = f"?path={device.sysfs_name}" if device.sysfs_name else ""
            finding.usb_port = f"usb://{device.ids}{where}"
        finding.hint = _hint(finding)
        findings.append(finding)
    return findings


async def scan_usb_async(
    source: Callable[[], Iterable[UsbDevice]] = pyusb_devices,
    profiles: Sequence[Profile] = (),
    *,
    sysfs: Path = SYSFS_USB,
    dev: Path = DEV,
) -> list[UsbFinding]:
    """`scan_usb` in a worker thread: USB and sysfs reads block."""
    return await asyncio.to_thread(lambda: scan_usb(list(source()), profiles, sysfs=sysfs, dev=dev))


def _hint(finding: UsbFinding) -> str:
    port = finding.port or "/dev/ttyUSB0"
    if finding.usb_port is not None:
        native = finding.profiles[0]
        return (
            f"profile {', '.join(finding.profiles)}: port {port} (its id, for ?serial=, and "
            f"a check: `tribune profile probe {native} --port '{port}'`)"
        )
    if finding.chip is not None:
        hint = f"serial adapter ({finding.chip}): try `tribune detect --port {port}`"
        if finding.profiles:
            hint += f"; usually fitted to: {', '.join(finding.profiles)}"
        if not finding.ttys:
            hint += " (no tty yet: is its kernel driver loaded?)"
        return hint
    if finding.profiles:
        probe = f"tribune profile probe {finding.profiles[0]} --port {port}"
        return f"profile {', '.join(finding.profiles)}: check with `{probe}`"
    if finding.ttys:
        return f"provides {', '.join(finding.ttys)}: try `tribune detect --port {port}`"
    return ""
