"""The evdev seam itself: input_event bytes, the fake device's kernel behaviour, the watcher.

Kernel paths stood for: `read(2)` on /dev/input/eventN returning whole `struct input_event`
records (here a pipe, fed in odd-sized pieces), ENODEV on unplug (here end-of-file), EVIOCGRAB
(EBUSY for a second grabber), EV_LED writes, and inotify on /dev/input (the real watcher, on a
temporary folder).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from evdev import ecodes

from tribune.inputs.evdev_source import EvdevSource
from tribune.inputs.fake import FakeInputSource, FakeKeypad
from tribune.inputs.source import (
    EV_KEY,
    EV_SYN,
    EVENT_SIZE,
    InputAccessError,
    InputDeviceGoneError,
    RawEvent,
    decode_events,
    encode_event,
    read_events,
)
from tribune.inputs.watch import watch_folder


def test_input_event_bytes_match_the_kernel_struct() -> None:
    assert EVENT_SIZE == 24  # x86-64: timeval (16), type, code (2 + 2), value (4)
    data = encode_event(EV_KEY, ecodes.KEY_F1, 1, 1700000000.25)
    assert data == (1700000000).to_bytes(8, "little") + (250000).to_bytes(8, "little") + bytes(
        [1, 0, 59, 0, 1, 0, 0, 0]
    )
    events, rest = decode_events(data + data[:10])
    assert events == [RawEvent(EV_KEY, 59, 1, 1700000000.25)]
    assert rest == data[:10]


async def test_events_read_whole_whatever_the_pieces() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    data = b"".join(encode_event(EV_KEY, code, 1) for code in (30, 31, 32))
    reader = read_events(read_fd, "pipe")
    got: list[int] = []

    async def collect() -> None:
        async for event in reader:
            got.append(event.code)

    task = asyncio.create_task(collect())
    for i in range(0, len(data), 7):  # 7-byte pieces: records split across reads
        os.write(write_fd, data[i : i + 7])
        await asyncio.sleep(0.005)
    os.close(write_fd)
    with pytest.raises(InputDeviceGoneError, match="unplugged"):
        await task
    assert got == [30, 31, 32]
    os.close(read_fd)


async def test_fake_keypad_behaves_like_the_kernel(tmp_path: Path) -> None:
    source = FakeInputSource(tmp_path / "input")
    keypad = FakeKeypad(keys=[ecodes.KEY_F1], leds=[ecodes.LED_NUML])
    node = source.plug(keypad)
    assert Path(node).exists()
    assert keypad.link is not None
    assert Path(keypad.link).resolve() == Path(node)
    (info,) = await source.devices()
    assert (info.path, info.ids, info.keys) == (node, "05a4:9881", frozenset({ecodes.KEY_F1}))
    first = await source.open(keypad.link)
    second = await source.open(node)
    first.grab()
    with pytest.raises(OSError, match="busy"):
        second.grab()
    first.set_led(ecodes.LED_NUML, True)
    assert keypad.leds == {ecodes.LED_NUML: True}
    keypad.press(ecodes.KEY_F1)
    events = first.events()
    assert (await anext(events))[:3] == (EV_KEY, ecodes.KEY_F1, 1)
    assert (await anext(events))[:3] == (EV_SYN, 0, 0)
    with pytest.raises(BlockingIOError):  # grabbed: the other reader got nothing
        os.read(second.read_fd, EVENT_SIZE)
    source.unplug(keypad)
    assert not Path(node).exists()
    with pytest.raises(InputDeviceGoneError):
        await anext(events)
    with pytest.raises(InputDeviceGoneError):
        first.set_led(ecodes.LED_NUML, False)
    with pytest.raises(InputDeviceGoneError):
        await source.open(node)
    first.close()
    second.close()
    source.plug(keypad)
    source.unreadable.add(keypad.node or "")
    with pytest.raises(InputAccessError):
        await source.open(keypad.link)


async def test_the_watcher_sees_nodes_come_and_go(tmp_path: Path) -> None:
    folder = tmp_path / "input"  # does not exist yet: a PC with no input device at all
    changes = watch_folder(folder, poll=0.05)
    first = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0.1)
    assert not first.done()
    folder.mkdir()
    await asyncio.wait_for(first, 1)  # it exists now
    (folder / "event3").touch()
    await asyncio.wait_for(anext(changes), 1)
    (folder / "by-id").mkdir()
    await asyncio.wait_for(anext(changes), 1)
    (folder / "by-id" / "usb-x-event-kbd").symlink_to("../event3")  # udev's link, a bit later
    await asyncio.wait_for(anext(changes), 1)
    (folder / "event3").unlink()
    await asyncio.wait_for(anext(changes), 1)
    await changes.aclose()


async def test_the_real_source_on_a_folder_without_devices(tmp_path: Path) -> None:
    assert await EvdevSource(str(tmp_path / "missing")).devices() == []
    (tmp_path / "event0").touch()  # not a character device: evdev cannot read it
    (info,) = await EvdevSource(str(tmp_path)).devices()
    assert info.error is not None


def test_udev_rule_gives_group_tribune_the_keypad_nodes() -> None:
    rules = Path(__file__).resolve().parents[2] / "systemd" / "60-tribune-input.rules"
    lines = [
        line
        for line in rules.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines
    for line in lines:
        keys = dict(part.strip().replace("==", "=", 1).split("=", 1) for part in line.split(", "))
        assert keys["SUBSYSTEM"] == '"input"'
        assert keys["KERNEL"] == '"event*"'
        assert keys["GROUP"] == '"tribune"'
        assert keys["MODE"] == '"0660"'  # write access too: LEDs and EVIOCGRAB
