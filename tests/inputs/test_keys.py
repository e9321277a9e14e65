"""KeyTracker alone: debounce, press, long press, repeat, on the event loop's clock."""

from __future__ import annotations

import asyncio

from tribune.config import KeyBinding
from tribune.inputs.keys import KeyTiming, KeyTracker, Trigger
from tribune.inputs.source import KEY_DOWN, KEY_HOLD, KEY_UP

TIMING = KeyTiming(long_press=0.2, repeat_delay=0.1, repeat_rate=20, debounce=0.03)
PRESS, BOTH, LONG, REPEAT = 1, 2, 3, 4


def tracker() -> tuple[KeyTracker, list[tuple[int, Trigger]]]:
    fired: list[tuple[int, Trigger]] = []
    bindings = {
        PRESS: KeyBinding(press="scene:a"),
        BOTH: KeyBinding(press="scene:a", long="scene:b"),
        LONG: KeyBinding(long="scene:b"),
        REPEAT: KeyBinding(press="action:board.volume_up", repeat=True),
    }
    return KeyTracker(bindings, TIMING, lambda code, t: fired.append((code, t))), fired


async def test_press_fires_at_once_on_key_down() -> None:
    keys, fired = tracker()
    keys.feed(PRESS, KEY_DOWN)
    assert fired == [(PRESS, "press")]
    keys.feed(PRESS, KEY_HOLD)
    await asyncio.sleep(0.05)
    keys.feed(PRESS, KEY_UP)
    assert fired == [(PRESS, "press")]


async def test_short_and_long_on_one_key() -> None:
    keys, fired = tracker()
    keys.feed(BOTH, KEY_DOWN)
    assert fired == []  # not yet: it may become a long press
    await asyncio.sleep(0.05)
    keys.feed(BOTH, KEY_UP)
    assert fired == [(BOTH, "press")]  # short: on release, before the threshold
    await asyncio.sleep(0.05)
    keys.feed(BOTH, KEY_DOWN)
    await asyncio.sleep(0.3)
    assert fired[1:] == [(BOTH, "long")]  # while still held
    keys.feed(BOTH, KEY_UP)
    assert fired[1:] == [(BOTH, "long")]


async def test_long_only_key() -> None:
    keys, fired = tracker()
    keys.feed(LONG, KEY_DOWN)
    await asyncio.sleep(0.05)
    keys.feed(LONG, KEY_UP)
    await asyncio.sleep(0.3)
    assert fired == []


async def test_repeat_after_the_delay_at_the_rate() -> None:
    keys, fired = tracker()
    keys.feed(REPEAT, KEY_DOWN)
    await asyncio.sleep(0.5)  # press at 0, repeats from 0.1 every 0.05: ~9
    keys.feed(REPEAT, KEY_UP)
    count = len(fired)
    await asyncio.sleep(0.15)
    assert len(fired) == count  # stops on release
    assert fired[0] == (REPEAT, "press")
    assert {t for _, t in fired[1:]} == {"repeat"}
    assert 7 <= count <= 10, count


async def test_bounces_are_one_press_and_a_quick_tap_is_not_lost() -> None:
    keys, fired = tracker()
    for value in (KEY_DOWN, KEY_UP, KEY_DOWN, KEY_UP, KEY_DOWN):  # within a millisecond
        keys.feed(BOTH, value)
    await asyncio.sleep(0.1)
    keys.feed(BOTH, KEY_UP)
    keys.feed(BOTH, KEY_DOWN)  # bounce on release
    keys.feed(BOTH, KEY_UP)
    await asyncio.sleep(0.1)
    assert fired == [(BOTH, "press")]
    # A real tap shorter than the bounce window: taken when the window ends, not dropped, and
    # the key is not left held.
    keys.feed(BOTH, KEY_DOWN)
    keys.feed(BOTH, KEY_UP)
    await asyncio.sleep(0.1)
    assert fired == [(BOTH, "press"), (BOTH, "press")]


async def test_reset_forgets_a_held_key_without_firing() -> None:
    keys, fired = tracker()
    keys.feed(REPEAT, KEY_DOWN)
    keys.feed(BOTH, KEY_DOWN)
    keys.reset()  # unplugged while held
    await asyncio.sleep(0.3)
    assert fired == [(REPEAT, "press")]


async def test_unmapped_keys_are_ignored() -> None:
    keys, fired = tracker()
    keys.feed(99, KEY_DOWN)
    keys.feed(99, KEY_UP)
    assert fired == []
