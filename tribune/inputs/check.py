"""What the devices' profiles say about the keys' intents: actions that exist, values they take.

The config schema checks that scenes, sources and devices exist; only a device's profile knows
that `action:board.volum_up` is a typo or that `desired:projector.power=of` is not a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tribune.config import RoomConfig, parse_intent
from tribune.drivers.capabilities import CompiledProfile
from tribune.errors import ConfigError, NotSupportedError, TribuneError
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import ValueType

# `desired:switcher.volume=+5`: a step from the current value (hold the key: `repeat`).
STEP = re.compile(r"^[+-][0-9]{1,6}$")


def is_step(value: str | None) -> bool:
    """Whether a desired value is a relative step (`+5`, `-5`)."""
    return value is not None and STEP.match(value) is not None


def intent_problem(text: str, profiles: Mapping[str, CompiledProfile]) -> str | None:
    """Why the device's profile would refuse a key's action or desired value; None if fine."""
    intent = parse_intent(text)
    profile = profiles.get(intent.target)
    if intent.kind not in ("action", "desired") or profile is None or intent.name is None:
        return None
    if intent.kind == "action":
        if intent.name in profile.actions:
            return None
        actions = ", ".join(sorted(profile.actions)) or "none"
        return f"{intent.target} has no action {intent.name!r} (actions: {actions})"
    try:
        cap = profile.capability(intent.name)
        if not cap.settable:
            return f"{intent.target}.{intent.name} is read-only"
        if intent.value == "toggle":
            if cap.type is not ValueType.BOOL:
                return f"{intent.target}.{intent.name}: `toggle` needs an on/off capability"
            return None
        if is_step(intent.value):
            if cap.type not in (ValueType.LEVEL, ValueType.INT):
                return f"{intent.target}.{intent.name}: a `{intent.value}` step needs a level"
            return None
        profile.normalize(cap, intent.value)
    except NotSupportedError as exc:
        return f"{intent.target}.{exc}"
    return None


def check_button_values(
    config: RoomConfig, loader: ProfileLoader
) -> list[tuple[tuple[str, ...], str]]:
    """Key intents the profiles would refuse: (key path, reason) each, like the room's check."""
    profiles: dict[str, CompiledProfile] = {}
    for device_id, device in config.devices.items():
        try:
            profiles[device_id] = CompiledProfile(loader.load(device.profile).profile)
        except (ConfigError, TribuneError):
            continue  # the room's own check reports the profile
    problems: list[tuple[tuple[str, ...], str]] = []
    for pad_name, pad in config.buttons.keypads.items():
        for key, binding in pad.keys.items():
            for when in ("press", "long"):
                text = getattr(binding, when)
                if text is None:
                    continue
                reason = intent_problem(text, profiles)
                if reason is not None:
                    problems.append((("buttons", "keypads", pad_name, "keys", key, when), reason))
    return problems
