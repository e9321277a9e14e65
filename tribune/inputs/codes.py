"""Key and LED names <-> the kernel's codes (python-evdev's `ecodes`, made from the headers)."""

from __future__ import annotations

from evdev import ecodes

# Names that alias a real key as the start of a range: `BTN_0` reads better than `BTN_MISC`.
_RANGE_NAMES = frozenset(
    {
        "KEY_MIN_INTERESTING",
        "BTN_MISC",
        "BTN_MOUSE",
        "BTN_JOYSTICK",
        "BTN_GAMEPAD",
        "BTN_DIGI",
        "BTN_WHEEL",
        "BTN_TRIGGER_HAPPY",
    }
)


def code_of(name: str) -> int:
    """`KEY_F1` -> 59; `KeyError` for an unknown name (the config checked it already)."""
    return int(ecodes.ecodes[name])


def key_name(code: int) -> str:
    """59 -> `KEY_F1`; 113 -> `KEY_MUTE` (not its range alias); unknown -> `KEY_0x2ff`."""
    names = ecodes.keys.get(code)
    if names is None:
        return f"KEY_{code:#x}"
    if isinstance(names, str):
        return names
    preferred = [n for n in names if n not in _RANGE_NAMES]
    return (preferred or list(names))[0]


def led_name(code: int) -> str:
    """0 -> `LED_NUML`."""
    names = ecodes.LED.get(code)
    if names is None:
        return f"LED_{code:#x}"
    return names if isinstance(names, str) else names[0]
