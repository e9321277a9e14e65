"""The real `InputSource`: `/dev/input/event*` through python-evdev.

Opening a node and its ioctls (name, ids, capabilities) run in a worker thread; events are
read on the event loop from the device's non-blocking fd (`read_events`), the same code the
tests' fake goes through. Grabbing (EVIOCGRAB) and LED writes are single syscalls that return
at once. Devices are listed read-only, so a scan never touches a keyboard's LEDs.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tribune.inputs.source import (
    EV_KEY,
    EV_LED,
    InputAccessError,
    InputDeviceGoneError,
    InputDeviceInfo,
    RawEvent,
    read_events,
)
from tribune.inputs.watch import LINK_FOLDERS, watch_folder

DEV_INPUT = "/dev/input"


class EvdevHandle:
    """An open `/dev/input/eventN`."""

    def __init__(self, device: Any, info: InputDeviceInfo) -> None:
        self._device = device  # evdev.InputDevice
        self._info = info

    @property
    def info(self) -> InputDeviceInfo:
        """What the device is."""
        return self._info

    def events(self) -> AsyncIterator[RawEvent]:
        """Its events; `InputDeviceGoneError` when it is unplugged."""
        return read_events(self._device.fd, self._info.path)

    def grab(self) -> None:
        """EVIOCGRAB; `OSError(EBUSY)` if another program holds it."""
        self._device.grab()

    def ungrab(self) -> None:
        """Release EVIOCGRAB."""
        self._device.ungrab()

    def set_led(self, code: int, on: bool) -> None:
        """Write an EV_LED event to the device."""
        import evdev

        try:
            self._device.set_led(code, 1 if on else 0)
        except evdev.EvdevError as exc:  # opened read-only: no write permission
            raise InputAccessError(f"{self._info.path}: {exc}") from None
        except OSError as exc:
            raise InputDeviceGoneError(f"{self._info.path}: {exc.strerror}") from None

    def close(self) -> None:
        """Close the fd (which ends a grab)."""
        try:
            self._device.close()
        except OSError:  # already gone
            pass


class EvdevSource:
    """Input devices in `/dev/input` (or another folder of event nodes)."""

    def __init__(self, folder: str = DEV_INPUT) -> None:
        self._folder = folder
        # A node's info by (path, inode, mode, group): unchanged nodes are not reopened.
        self._known: dict[tuple[str, int, int, int], InputDeviceInfo] = {}

    @property
    def folder(self) -> str:
        """The folder it lists."""
        return self._folder

    async def devices(self) -> list[InputDeviceInfo]:
        """Every `event*` node, with its info or the reason it could not be read."""
        return await asyncio.to_thread(self._list)

    def _list(self) -> list[InputDeviceInfo]:
        folder = Path(self._folder)
        try:
            names = [e.name for e in os.scandir(folder) if e.name.startswith("event")]
        except OSError:
            return []
        links = _links(folder)
        found: list[InputDeviceInfo] = []
        known: dict[tuple[str, int, int, int], InputDeviceInfo] = {}
        for name in sorted(names, key=_node_number):
            path = str(folder / name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished meanwhile
            key = (path, st.st_ino, st.st_mode, st.st_gid)
            info = self._known.get(key)
            if info is None:
                info = _probe(path, tuple(links.get(path, ())))
                if info is None:
                    continue
            elif info.links != tuple(links.get(path, ())):
                info = _with_links(info, tuple(links.get(path, ())))
            if info.error is None:
                known[key] = info  # errors are retried on every scan
            found.append(info)
        self._known = known
        return found

    async def open(self, path: str) -> EvdevHandle:
        """Open a node (or a by-id/by-path link to one) for reading and LED writes."""
        return await asyncio.to_thread(self._open, path)

    def _open(self, path: str) -> EvdevHandle:
        import evdev

        node = os.path.realpath(path)
        try:
            device = evdev.InputDevice(node)
        except PermissionError:
            raise InputAccessError(f"{path}: permission denied") from None
        except OSError as exc:
            raise InputDeviceGoneError(f"{path}: {exc.strerror or exc}") from None
        links = tuple(_links(Path(self._folder)).get(node, ()))
        return EvdevHandle(device, _info_of(device, node, links))

    def changes(self) -> AsyncIterator[None]:
        """inotify on the folder (and by-id, by-path); a 1 s poll where that is not possible."""
        return watch_folder(Path(self._folder))


def _node_number(name: str) -> int:
    digits = name.removeprefix("event")
    return int(digits) if digits.isdigit() else 1 << 30


def _links(folder: Path) -> dict[str, list[str]]:
    """node -> the by-id and by-path links that point at it."""
    links: dict[str, list[str]] = {}
    for sub in LINK_FOLDERS:
        try:
            entries = list(os.scandir(folder / sub))
        except OSError:
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_symlink():
                links.setdefault(os.path.realpath(entry.path), []).append(entry.path)
    return links


def _probe(path: str, links: tuple[str, ...]) -> InputDeviceInfo | None:
    import evdev

    try:
        device = evdev.InputDevice(path, readonly=True)
    except PermissionError:
        return InputDeviceInfo(path, links=links, error="permission denied")
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT, errno.ENXIO):
            return None  # unplugged while we looked
        return InputDeviceInfo(path, links=links, error=exc.strerror or str(exc))
    try:
        return _info_of(device, path, links)
    finally:
        device.close()


def _info_of(device: Any, path: str, links: tuple[str, ...]) -> InputDeviceInfo:
    caps: dict[int, list[int]] = device.capabilities(absinfo=False)
    return InputDeviceInfo(
        path=path,
        name=str(device.name),
        vid=int(device.info.vendor),
        pid=int(device.info.product),
        phys=str(device.phys or ""),
        links=links,
        keys=frozenset(caps.get(EV_KEY, ())),
        leds=frozenset(caps.get(EV_LED, ())),
    )


def _with_links(info: InputDeviceInfo, links: tuple[str, ...]) -> InputDeviceInfo:
    from dataclasses import replace

    return replace(info, links=links)
