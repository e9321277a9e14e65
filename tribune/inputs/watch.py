"""Watch a device folder (`/dev/input`) for nodes appearing, vanishing or changing permissions.

inotify (through libc, no extra dependency) on the folder and its `by-id`/`by-path` link
folders; the caller rescans on each change. Where inotify is not available, or while the
folder does not exist yet (a PC with no input device at all has no `/dev/input`), the folder is
polled every `POLL_SECONDS` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
LINK_FOLDERS = ("by-id", "by-path")

IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
IN_ATTRIB = 0x004  # udev sets the group and mode a moment after the node appears
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
WATCH_MASK = IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF


class _Inotify:
    """An inotify instance: a non-blocking fd that becomes readable on a change."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(name, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd

    def add(self, folder: Path) -> int:
        """Watch `folder` (again: the kernel keeps one watch per folder); its watch id, or -1."""
        wd: int = self._libc.inotify_add_watch(self.fd, os.fsencode(folder), WATCH_MASK)
        return wd

    def drain(self, main: int) -> bool:
        """Read what is pending; True if the watch `main` ended (its folder went away)."""
        gone = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return gone
            # struct inotify_event: int wd, u32 mask, u32 cookie, u32 len, char name[len]
            offset = 0
            while offset + 16 <= len(data):
                wd = int.from_bytes(data[offset : offset + 4], "little", signed=True)
                mask = int.from_bytes(data[offset + 4 : offset + 8], "little")
                length = int.from_bytes(data[offset + 12 : offset + 16], "little")
                if wd == main and mask & (IN_DELETE_SELF | IN_IGNORED):
                    gone = True
                offset += 16 + length

    def close(self) -> None:
        os.close(self.fd)


async def watch_folder(folder: Path, *, poll: float = POLL_SECONDS) -> AsyncGenerator[None, None]:
    """Yield after every change under `folder` (and once when it first exists)."""
    loop = asyncio.get_running_loop()
    try:
        notify: _Inotify | None = _Inotify()
    except (OSError, AttributeError) as exc:
        log.warning("inotify unavailable (%s): polling %s every %gs", exc, folder, poll)
        notify = None
    if notify is None:
        async for _ in _poll_folder(folder, poll):
            yield None
        return
    readable = asyncio.Event()
    loop.add_reader(notify.fd, readable.set)
    try:
        while True:
            while not await asyncio.to_thread(folder.is_dir):  # noqa: ASYNC110 - nothing to wait on
                await asyncio.sleep(poll)
            main = notify.add(folder)
            if main < 0:
                break  # not watchable (permissions): poll instead
            yield None  # it exists (again): whatever is in it is new
            while True:
                for sub in LINK_FOLDERS:  # made with the first device that has such a link
                    notify.add(folder / sub)  # -1 while it does not exist: tried again next time
                await readable.wait()
                readable.clear()
                gone = notify.drain(main)
                yield None
                if gone:
                    break
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(notify.fd)
        notify.close()
    log.warning("cannot watch %s: polling it every %gs", folder, poll)
    async for _ in _poll_folder(folder, poll):
        yield None


async def _poll_folder(folder: Path, poll: float) -> AsyncIterator[None]:
    """The fallback: compare the folder's listing every `poll` seconds."""
    seen: object = None
    while True:
        now = await asyncio.to_thread(_listing, folder)
        if now != seen:
            seen = now
            yield None
        await asyncio.sleep(poll)


def _listing(folder: Path) -> frozenset[tuple[str, int, int]] | None:
    if not folder.is_dir():
        return None
    found: set[tuple[str, int, int]] = set()
    for sub in (folder, *(folder / name for name in LINK_FOLDERS)):
        with contextlib.suppress(OSError):
            for entry in os.scandir(sub):
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    found.add((entry.path, st.st_ino, st.st_mode ^ st.st_gid))
    return frozenset(found)
