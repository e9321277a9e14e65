"""Keypads on a fake `/dev/input` driving the simulated room of tests/room.

The fake (tribune/inputs/fake.py) stands for the kernel: `<tmp>/input/eventN` files for the
device nodes (/dev/input/eventN), `<tmp>/input/by-id/...` for udev's links, pipes carrying real
`struct input_event` bytes for the event queue of each open fd, EVIOCGRAB and EV_LED writes
recorded by the fake device. The folder watcher is the real inotify code, on that folder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from evdev import ecodes

from tests.room.conftest import ROOM_TOML, SimRoom, sim_room  # noqa: F401 - the fixture
from tribune.config import ButtonsSection, parse_config
from tribune.inputs.fake import FakeInputSource, FakeKeypad
from tribune.inputs.service import KeyService
from tribune.room import Room

# Short times, so the suite stays quick; the checks allow for the event loop's jitter.
BUTTONS_TOML = """
[buttons]
long_press = 0.3
repeat_delay = 0.2
repeat_rate = 10
debounce = 0.03

[buttons.keypads.desk]
path = "{link}"
grab = {grab}
leds = {{ LED_NUML = "scene:class-start", LED_CAPSL = "source:laptop" }}

[buttons.keypads.desk.keys]
KEY_F1 = "scene:class-start"
KEY_F2 = {{ press = "source:laptop", long = "scene:class-end" }}
KEY_F3 = {{ long = "scene:class-end" }}
KEY_VOLUMEUP = {{ press = "action:board.volume_up", repeat = true }}
KEY_VOLUMEDOWN = {{ press = "desired:switcher.volume=-10", repeat = true }}
KEY_MUTE = "desired:switcher.mute=toggle"
KEY_F12 = "action:projector.volume_up"
"""

KEYPAD_KEYS = [
    ecodes.KEY_F1,
    ecodes.KEY_F2,
    ecodes.KEY_F3,
    ecodes.KEY_F4,
    ecodes.KEY_F12,
    ecodes.KEY_VOLUMEUP,
    ecodes.KEY_VOLUMEDOWN,
    ecodes.KEY_MUTE,
]
KEYPAD_LEDS = [ecodes.LED_NUML, ecodes.LED_CAPSL]


def buttons_config(link: str, *, grab: bool = True) -> ButtonsSection:
    """BUTTONS_TOML for a keypad at `link`."""
    return buttons_from(BUTTONS_TOML.format(link=link, grab=str(grab).lower()))


def buttons_from(text: str) -> ButtonsSection:
    """A `[buttons]` section, checked against the simulated room's scenes and devices."""
    room_text = ROOM_TOML.format(projector="x", board="x", switcher="x")
    return parse_config(room_text + text, "room.toml").buttons


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    """Wait for `predicate`; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@dataclass
class KeyRig:
    """A running room, a fake `/dev/input` with one keypad plugged in, and the key service."""

    room: Room
    source: FakeInputSource
    keypad: FakeKeypad
    service: KeyService

    async def tap(self, code: int, hold: float = 0.05) -> None:
        """Press, hold, release."""
        self.keypad.press(code)
        await asyncio.sleep(hold)
        self.keypad.release(code)

    async def audit(self, who: str = "button") -> list[dict[str, object]]:
        """This origin's audit entries, oldest first."""
        entries = await self.room.store.audit_tail(1000)
        return [e.as_dict() for e in reversed(entries) if e.who == who]

    async def opened(self) -> None:
        """Wait until the service has the keypad open."""
        await until(lambda: any(h.closed is False for h in self.keypad.handles))


def make_keypad() -> FakeKeypad:
    """A USB keypad with F-keys, volume and mute keys, and two LEDs."""
    return FakeKeypad(
        "Acme USB Keypad",
        keys=KEYPAD_KEYS,
        leds=KEYPAD_LEDS,
        by_id="usb-Acme_USB_Keypad-event-kbd",
    )


@pytest.fixture
async def room(sim_room: SimRoom) -> AsyncIterator[Room]:  # noqa: F811 - uses the fixture
    room = await sim_room.make()
    await room.start()
    yield room
    await room.stop()
    await room.store.close()


@pytest.fixture
def fake_input(tmp_path: Path) -> FakeInputSource:
    """An empty fake `/dev/input`."""
    return FakeInputSource(tmp_path / "input")


@pytest.fixture
async def rig(room: Room, fake_input: FakeInputSource) -> AsyncIterator[KeyRig]:
    keypad = make_keypad()
    fake_input.plug(keypad)
    assert keypad.link is not None
    service = KeyService(room, buttons_config(keypad.link), source=fake_input)
    await service.start()
    rig = KeyRig(room, fake_input, keypad, service)
    await rig.opened()
    yield rig
    await service.stop()
