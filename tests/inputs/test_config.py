"""`[buttons]` mistakes name file, line and key, like the rest of room.toml."""

from __future__ import annotations

import pytest

from tests.room.conftest import ROOM_TOML
from tribune.config import parse_config, parse_intent
from tribune.errors import ConfigError

ROOM = ROOM_TOML.format(projector="x", board="x", switcher="x")


def error_of(buttons: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(ROOM + buttons, "room.toml")
    return str(caught.value)


def line_of(buttons: str, start: str) -> int:
    text = ROOM + buttons
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


PAD = '[buttons.keypads.desk]\nvid_pid = "05a4:9881"\n'

MISTAKES = [
    (
        PAD + 'keys = { KEY_F1 = "scene:class-strat" }\n',
        "keys =",
        "buttons.keypads.desk.keys.KEY_F1.press: no scene 'class-strat' (scenes: class-start,",
    ),
    (
        PAD + '[buttons.keypads.desk.keys]\nKEY_F1 = "scene:class-start"\n'
        'KEY_FF2 = "scene:class-end"\n',
        "KEY_FF2",
        "buttons.keypads.desk.keys.KEY_FF2: unknown key code 'KEY_FF2' (did you mean 'KEY_F2'?)",
    ),
    (
        PAD + '[buttons.keypads.desk.keys]\nKEY_F1 = { pres = "scene:class-start" }\n',
        "KEY_F1",
        "buttons.keypads.desk.keys.KEY_F1.pres: unknown key (did you mean 'press'?)",
    ),
    (
        PAD + '[buttons.keypads.desk.keys]\nKEY_F1 = "scene class-start"\n',
        "KEY_F1",
        "buttons.keypads.desk.keys.KEY_F1.press: 'scene class-start': want scene:ID, source:ID,",
    ),
    (
        PAD + "[buttons.keypads.desk.keys]\n"
        'KEY_VOLUMEUP = { press = "action:board.volume_up", long = "scene:class-end", '
        "repeat = true }\n",
        "KEY_VOLUMEUP",
        "buttons.keypads.desk.keys.KEY_VOLUMEUP: `repeat` needs `press` and no `long`",
    ),
    (
        PAD + '[buttons.keypads.desk.keys]\nKEY_F1 = "action:beamer.volume_up"\n',
        "KEY_F1",
        "buttons.keypads.desk.keys.KEY_F1.press: no device 'beamer' (devices: projector, board,",
    ),
    (
        PAD + 'leds = { LED_NUM = "scene:class-start" }\nkeys = { KEY_F1 = "scene:class-start" }\n',
        "leds",
        "buttons.keypads.desk.leds.LED_NUM: unknown LED 'LED_NUM' (did you mean 'LED_NUML'?)",
    ),
    (
        PAD + 'leds = { LED_NUML = "power:beamer" }\nkeys = { KEY_F1 = "scene:class-start" }\n',
        "leds",
        "buttons.keypads.desk.leds.LED_NUML: no device 'beamer'",
    ),
    (
        '[buttons.keypads.desk]\nkeys = { KEY_F1 = "scene:class-start" }\n',
        "[buttons.keypads.desk]",
        "buttons.keypads.desk: give `path` (/dev/input/by-id/...), or `name` and/or `vid_pid`",
    ),
    (
        '[buttons.keypads.desk]\npath = "usb-Acme-event-kbd"\n'
        'keys = { KEY_F1 = "scene:class-start" }\n',
        "path",
        "buttons.keypads.desk.path: 'usb-Acme-event-kbd': want a full path, e.g. /dev/input/by-id/",
    ),
    (
        "[buttons]\nlong_pres = 1.0\n",
        "long_pres",
        "buttons.long_pres: unknown key (did you mean 'long_press'?)",
    ),
]


@pytest.mark.parametrize(("buttons", "line_start", "words"), MISTAKES)
def test_mistakes_name_file_line_and_key(buttons: str, line_start: str, words: str) -> None:
    message = error_of(buttons)
    assert message.startswith(f"room.toml:{line_of(buttons, line_start)}: {words}"), message


def test_a_full_section_loads() -> None:
    config = parse_config(
        ROOM
        + """
[buttons]
long_press = 1.0

[buttons.keypads.desk]
path = "/dev/input/by-id/usb-Acme_USB_Keypad-event-kbd"
leds = { LED_NUML = "scene:class-start", LED_SCROLLL = "power:projector" }

[buttons.keypads.desk.keys]
KEY_F1 = "scene:class-start"
KEY_F2 = { press = "source:laptop", long = "scene:class-end" }
BTN_0 = { press = "action:board.volume_up", repeat = true }
KEY_MUTE = "desired:switcher.mute=toggle"

[buttons.keypads.side]
name = "Button Panel"
vid_pid = "16C0:27DB"
grab = false
keys = { KEY_A = "desired:projector.power=on" }
""",
        "room.toml",
    )
    buttons = config.buttons
    assert buttons.long_press == 1.0
    assert buttons.repeat_rate == 5.0
    desk = buttons.keypads["desk"]
    assert desk.grab is True
    assert desk.keys["KEY_F1"].press == "scene:class-start"
    assert desk.keys["BTN_0"].repeat is True
    assert buttons.keypads["side"].grab is False


def test_the_profiles_judge_actions_and_values() -> None:
    from tribune.drivers.capabilities import CompiledProfile
    from tribune.inputs.check import intent_problem
    from tribune.profiles.loader import ProfileLoader

    loader = ProfileLoader()
    profiles = {
        "board": CompiledProfile(loader.load("smart-board").profile),
        "switcher": CompiledProfile(loader.load("extron-sis").profile),
    }
    assert intent_problem("action:board.volume_up", profiles) is None
    assert intent_problem("desired:switcher.volume=+5", profiles) is None
    assert intent_problem("desired:switcher.mute=toggle", profiles) is None
    assert intent_problem("scene:class-start", profiles) is None
    assert "no action 'volum_up'" in str(intent_problem("action:board.volum_up", profiles))
    assert "needs a level" in str(intent_problem("desired:board.power=+5", profiles))
    assert "needs an on/off" in str(intent_problem("desired:switcher.volume=toggle", profiles))
    assert "not one of" in str(intent_problem("desired:board.power=of", profiles))


def test_intents() -> None:
    assert str(parse_intent("desired:projector.power=on")) == "desired:projector.power=on"
    intent = parse_intent("action:switcher.volume_up")
    assert (intent.kind, intent.target, intent.name) == ("action", "switcher", "volume_up")
    with pytest.raises(ValueError, match="want scene:ID"):
        parse_intent("volume_up")
