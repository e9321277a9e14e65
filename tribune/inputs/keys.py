"""What a key means over time: debounce, press, long press and auto-repeat.

`KeyTracker` takes one device's raw EV_KEY changes and calls `fire(key, trigger)` with
`trigger` one of "press", "long", "repeat". Time is the event loop's clock and its timers, so
a long press or a repeat happens while the key is held, without waiting for another event.

- **Debounce**: after an accepted change a key's changes are ignored for `debounce` seconds
  (contact bounce); when that window ends the key takes the state it was last reported in, so
  a quick real tap is never lost and a key is never left "held".
- **Press**: fires when the key goes down — unless the key also has a long binding, then it
  fires when the key comes back up before `long_press`.
- **Long**: fires once, `long_press` seconds after the key went down, if it is still down.
- **Repeat**: a `repeat` key fires "repeat" `repeat_delay` after going down, then
  `repeat_rate` times a second until it comes up.
- The kernel's own auto-repeat (value 2) is ignored: the repeat here is the configured one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from tribune.config import ButtonsSection, KeyBinding
from tribune.inputs.source import KEY_DOWN, KEY_UP

Trigger = Literal["press", "long", "repeat"]
Fire = Callable[[int, Trigger], None]


@dataclass(frozen=True, slots=True)
class KeyTiming:
    """Seconds (and repeats per second) shared by every key."""

    long_press: float = 0.8
    repeat_delay: float = 0.5
    repeat_rate: float = 5.0
    debounce: float = 0.03

    @classmethod
    def of(cls, section: ButtonsSection) -> KeyTiming:
        """The timing of a `[buttons]` section."""
        return cls(section.long_press, section.repeat_delay, section.repeat_rate, section.debounce)


@dataclass(slots=True)
class _Key:
    binding: KeyBinding
    raw: bool = False  # what the device last said
    down: bool = False  # what we accepted (debounced)
    changed_at: float = float("-inf")
    settle: asyncio.TimerHandle | None = None
    long: asyncio.TimerHandle | None = None
    repeat: asyncio.TimerHandle | None = None
    long_fired: bool = False


class KeyTracker:
    """The keys of one open device."""

    def __init__(self, bindings: Mapping[int, KeyBinding], timing: KeyTiming, fire: Fire) -> None:
        self._keys = {code: _Key(binding) for code, binding in bindings.items()}
        self._timing = timing
        self._fire = fire
        self._loop = asyncio.get_running_loop()

    def feed(self, code: int, value: int) -> None:
        """One EV_KEY event: value 1 down, 0 up (2, the kernel's repeat, is ignored)."""
        key = self._keys.get(code)
        if key is None or value not in (KEY_DOWN, KEY_UP):
            return
        key.raw = value == KEY_DOWN
        if key.raw == key.down and key.settle is None:
            return
        now = self._loop.time()
        if now - key.changed_at < self._timing.debounce:
            if key.settle is None:  # look again when the bounce window ends
                key.settle = self._loop.call_at(
                    key.changed_at + self._timing.debounce, self._settle, code
                )
            return
        if key.raw != key.down:
            self._accept(code, key, key.raw)

    def reset(self) -> None:
        """Forget every held key without firing (the device went away)."""
        for key in self._keys.values():
            for timer in (key.settle, key.long, key.repeat):
                if timer is not None:
                    timer.cancel()
            key.settle = key.long = key.repeat = None
            key.raw = key.down = key.long_fired = False

    def _settle(self, code: int) -> None:
        key = self._keys[code]
        key.settle = None
        if key.raw != key.down:
            self._accept(code, key, key.raw)

    def _accept(self, code: int, key: _Key, down: bool) -> None:
        key.down = down
        key.changed_at = self._loop.time()
        if down:
            self._went_down(code, key)
        else:
            self._went_up(code, key)

    def _went_down(self, code: int, key: _Key) -> None:
        binding = key.binding
        key.long_fired = False
        if binding.long is not None:
            key.long = self._loop.call_later(self._timing.long_press, self._long, code)
        elif binding.press is not None:
            self._fire(code, "press")
            if binding.repeat:
                first = self._loop.time() + self._timing.repeat_delay
                key.repeat = self._loop.call_at(first, self._repeat, code, first)

    def _went_up(self, code: int, key: _Key) -> None:
        if key.repeat is not None:
            key.repeat.cancel()
            key.repeat = None
        if key.long is not None:
            key.long.cancel()
            key.long = None
        if key.binding.long is not None and not key.long_fired and key.binding.press is not None:
            self._fire(code, "press")  # released before the long-press threshold

    def _long(self, code: int) -> None:
        key = self._keys[code]
        key.long = None
        if key.down:
            key.long_fired = True
            self._fire(code, "long")

    def _repeat(self, code: int, due: float) -> None:
        key = self._keys[code]
        key.repeat = None
        if not key.down:
            return
        self._fire(code, "repeat")
        # On a schedule, not "interval after we ran": the rate holds when the loop is late.
        following = max(due + 1.0 / self._timing.repeat_rate, self._loop.time())
        key.repeat = self._loop.call_at(following, self._repeat, code, following)
