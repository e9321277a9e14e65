"""`tribune buttons list|listen`: what input devices there are, and what their keys are called.

`listen` is for writing the `[buttons]` mapping: a technician presses each key and reads its
name (`KEY_F1`). It reads without grabbing (unless `--grab`), so keys also reach the desktop;
it sends nothing to the room. A keypad grabbed by a running `tribune serve` shows nothing: stop
the service first (listen says so when it finds the grab taken).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import sys
import time
from typing import Any

from tribune.errors import TribuneError
from tribune.inputs.source import (
    EV_KEY,
    KEY_DOWN,
    KEY_HOLD,
    InputDeviceGoneError,
    InputDeviceInfo,
    InputHandle,
    InputSource,
)

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_NO_DEVICES = 4

EPILOG = """exit codes:
  0  ok (listen: ran for --seconds, or until Ctrl-C)
  2  invalid usage
  4  no input devices found: none in /dev/input, none this user may read (see
     systemd/60-tribune-input.rules), or no device at --device
"""

ACCESS_HINT = (
    "give this user access: install systemd/60-tribune-input.rules for the keypad (group "
    "tribune), or add the user to group input"
)


def make_source() -> InputSource:
    """The input devices of this machine (tests replace this with a fake `/dev/input`)."""
    from tribune.inputs.evdev_source import EvdevSource

    return EvdevSource()


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _none_found(source: InputSource, devices: list[InputDeviceInfo]) -> int:
    """Say plainly why there is nothing to show; exit code 4."""
    unreadable = [d for d in devices if d.error is not None]
    if unreadable:
        sys.stderr.write(
            f"tribune: no readable input devices: {len(unreadable)} in {source.folder}, "
            f"but this user may not open them ({unreadable[0].error}); {ACCESS_HINT}\n"
        )
    else:
        sys.stderr.write(f"tribune: no input devices found in {source.folder}\n")
    return EXIT_NO_DEVICES


# --- list ------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """List input devices: node, vid:pid, name, links, how many keys, LEDs."""
    source = make_source()
    devices = asyncio.run(source.devices())
    if args.json:
        _out(json.dumps([_as_json(d) for d in devices], ensure_ascii=False))
        return EXIT_OK if any(d.error is None for d in devices) else EXIT_NO_DEVICES
    readable = [d for d in devices if d.error is None]
    if not readable:
        return _none_found(source, devices)
    from tribune.inputs.codes import led_name

    for d in devices:
        if d.error is not None:
            _out(f"{d.path}  ({d.error})")
            continue
        leds = ", ".join(led_name(code) for code in sorted(d.leds))
        _out(
            f"{d.path}  {d.ids}  {d.name!r}  {len(d.keys)} keys"
            + (f"  LEDs: {leds}" if leds else "")
        )
        for link in d.links:
            _out(f"    {link}")
    return EXIT_OK


def _as_json(d: InputDeviceInfo) -> dict[str, Any]:
    from tribune.inputs.codes import key_name, led_name

    return {
        "path": d.path,
        "name": d.name,
        "vid_pid": d.ids,
        "phys": d.phys,
        "links": list(d.links),
        "keys": [key_name(code) for code in sorted(d.keys)],
        "leds": [led_name(code) for code in sorted(d.leds)],
        "error": d.error,
    }


# --- listen ----------------------------------------------------------------------------------


def cmd_listen(args: argparse.Namespace) -> int:
    """Print key names as they are pressed."""
    if args.seconds is not None and args.seconds <= 0:
        sys.stderr.write("tribune: --seconds wants a positive number\n")
        return EXIT_INVALID
    try:
        return asyncio.run(listen(make_source(), args.device, args.seconds, grab=args.grab))
    except KeyboardInterrupt:  # Ctrl-C is how a technician ends it
        return EXIT_OK


async def listen(
    source: InputSource, device: str | None, seconds: float | None, *, grab: bool = False
) -> int:
    """Show the keys of every keyboard-like device (or of `device`) until `seconds` pass."""
    devices = await source.devices()
    if device is not None:
        chosen = [d for d in devices if d.known_as(device)]
        if not chosen:
            sys.stderr.write(f"tribune: no input device {device} (`tribune buttons list`)\n")
            return EXIT_NO_DEVICES
    else:
        chosen = [d for d in devices if d.keys or d.error is not None]
    handles: list[InputHandle] = []
    for info in chosen:
        if info.error is not None:
            sys.stderr.write(f"tribune: {info.path}: {info.error}\n")
            continue
        try:
            handle = await source.open(info.path)
        except (TribuneError, OSError) as exc:  # no access, or unplugged meanwhile: go on
            sys.stderr.write(f"tribune: {exc}\n")
            continue
        _check_grab(handle, keep=grab)
        handles.append(handle)
    if not handles:
        return _none_found(source, chosen)
    until = "Ctrl-C to stop" if seconds is None else f"for {seconds:g} s"
    _out(f"listening to {len(handles)} input device(s) ({until}); nothing is sent to the room:")
    for handle in handles:
        info = handle.info
        _out(f"  {info.path}  {info.ids}  {info.name!r}")
        for link in info.links:
            _out(f"      {link}")
    readers = [asyncio.create_task(_show(handle)) for handle in handles]
    try:
        done, _ = await asyncio.wait(readers, timeout=seconds)
        if seconds is None or len(done) == len(readers):
            _out("every device is gone")
            return EXIT_NO_DEVICES
        return EXIT_OK
    finally:
        for task in readers:
            task.cancel()
        for task in readers:
            with contextlib.suppress(BaseException):
                await task
        for handle in handles:
            handle.close()


def _check_grab(handle: InputHandle, *, keep: bool) -> None:
    """Grab to learn whether another program holds the device (then we would see nothing)."""
    try:
        handle.grab()
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            sys.stderr.write(
                f"tribune: {handle.info.path} is grabbed by another program (a running "
                "`tribune serve`?): its keys will not show here until that stops\n"
            )
        return
    if not keep:
        handle.ungrab()


async def _show(handle: InputHandle) -> None:
    from tribune.inputs.codes import key_name

    info = handle.info
    node = info.path.rsplit("/", 1)[-1]
    started = time.monotonic()
    try:
        async for event in handle.events():
            if event.type != EV_KEY:
                continue
            what = {KEY_DOWN: "press", KEY_HOLD: "hold"}.get(event.value, "release")
            at = time.monotonic() - started
            _out(f"{at:8.3f}  {node}  {info.name}  {key_name(event.code)}  {what}")
    except InputDeviceGoneError:
        _out(f"{time.monotonic() - started:8.3f}  {node}  {info.name}  unplugged")


# --- registration ----------------------------------------------------------------------------


def add_buttons_parser(sub: Any) -> None:
    """`tribune buttons list|listen`."""
    fmt = argparse.RawDescriptionHelpFormatter
    buttons = sub.add_parser("buttons", help="lectern keypads: list them, see their key names")
    bsub = buttons.add_subparsers(dest="buttons_command", required=True, metavar="ACTION")
    blist = bsub.add_parser(
        "list",
        help="list input devices (node, vid:pid, name, links)",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    blist.add_argument("--json", action="store_true", help="print JSON for scripts")
    blist.set_defaults(handler=cmd_list)
    blisten = bsub.add_parser(
        "listen",
        help="show key names as keys are pressed, to write [buttons]",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    blisten.add_argument(
        "--device", metavar="PATH", help="only this device (/dev/input/by-id/... or eventN)"
    )
    blisten.add_argument(
        "--seconds", type=float, metavar="N", help="stop after N seconds (default: Ctrl-C)"
    )
    blisten.add_argument(
        "--grab", action="store_true", help="keep the keys from reaching the desktop meanwhile"
    )
    blisten.set_defaults(handler=cmd_listen)
