"""`tribune buttons list|listen` against the fake `/dev/input`, and on this machine (none).

The fake stands for: the listing of /dev/input/event* and its by-id links (files in a temporary
folder), key presses read from /dev/input/eventN (`struct input_event` bytes in a pipe, the
kernel's auto-repeat as value 2), EVIOCGRAB held by another process (EBUSY), unplugging (ENODEV,
here end-of-file) and EACCES on a node without the udev rule. The last tests run the real path:
python-evdev on this machine's /dev/input, which does not exist here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from evdev import ecodes

from tests.inputs.conftest import BUTTONS_TOML, make_keypad
from tests.room.conftest import ROOM_TOML
from tribune.cli import main
from tribune.inputs import cli as buttons_cli
from tribune.inputs.fake import FakeInputSource

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeInputSource:
    """`tribune buttons` reads this fake `/dev/input` instead of the machine's."""
    source = FakeInputSource(tmp_path / "input")
    monkeypatch.setattr(buttons_cli, "make_source", lambda: source)
    return source


def run_cli(args: list[str]) -> tuple[threading.Thread, list[int]]:
    """`tribune ARGS` in a thread (it runs its own event loop); its exit code lands in the list."""
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(main(args)), daemon=True)
    thread.start()
    return thread, code


def test_listen_prints_key_names(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a technician sees pressing F1, holding volume up (the kernel's repeat: value 2), and
    # pressing a key with two names (113 is KEY_MUTE, not its alias KEY_MIN_INTERESTING).
    keypad = make_keypad()
    fake_dev.plug(keypad)
    thread, code = run_cli(["buttons", "listen", "--seconds", "0.6"])
    keypad.wait_opened()
    keypad.press(ecodes.KEY_F1)
    keypad.release(ecodes.KEY_F1)
    keypad.press(ecodes.KEY_VOLUMEUP)
    keypad.hold(ecodes.KEY_VOLUMEUP)
    keypad.release(ecodes.KEY_VOLUMEUP)
    keypad.press(ecodes.KEY_MUTE)
    thread.join(5)
    assert code == [0]
    out = capsys.readouterr().out
    assert "listening to 1 input device(s) (for 0.6 s)" in out
    assert "usb-Acme_USB_Keypad-event-kbd" in out
    lines = [
        line.split()[1:] for line in out.splitlines() if line.startswith(" ") and "KEY_" in line
    ]
    node = Path(keypad.node or "").name
    name = ["Acme", "USB", "Keypad"]
    assert lines == [
        [node, *name, "KEY_F1", "press"],
        [node, *name, "KEY_F1", "release"],
        [node, *name, "KEY_VOLUMEUP", "press"],
        [node, *name, "KEY_VOLUMEUP", "hold"],
        [node, *name, "KEY_VOLUMEUP", "release"],
        [node, *name, "KEY_MUTE", "press"],
    ]
    assert keypad.released()  # listen does not keep the grab (no --grab)


def test_listen_says_when_the_service_holds_the_keypad(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    keypad = make_keypad()
    fake_dev.plug(keypad)
    service_handle = asyncio.run(fake_dev.open(keypad.node or ""))
    service_handle.grab()  # EVIOCGRAB held by `tribune serve`
    assert main(["buttons", "listen", "--seconds", "0.1"]) == 0
    assert "grabbed by another program" in capsys.readouterr().err
    service_handle.close()


def test_listen_reports_an_unplugged_device(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    keypad = make_keypad()
    fake_dev.plug(keypad)
    thread, code = run_cli(["buttons", "listen", "--seconds", "5"])
    keypad.wait_opened()
    fake_dev.unplug(keypad)
    thread.join(5)
    assert code == [4]  # nothing left to listen to
    assert "unplugged" in capsys.readouterr().out


def test_listen_to_an_unknown_device(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_dev.plug(make_keypad())
    assert main(["buttons", "listen", "--device", "/dev/input/by-id/nope", "--seconds", "1"]) == 4
    assert "no input device /dev/input/by-id/nope" in capsys.readouterr().err


def test_no_readable_devices_says_why(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    keypad = make_keypad()
    fake_dev.plug(keypad)
    assert keypad.node is not None
    fake_dev.unreadable.add(keypad.node)  # EACCES: no udev rule, not in group input
    assert main(["buttons", "listen", "--seconds", "1"]) == 4
    err = capsys.readouterr().err
    assert "may not open them (permission denied)" in err
    assert "60-tribune-input.rules" in err


def test_list_shows_nodes_links_and_leds(
    fake_dev: FakeInputSource, capsys: pytest.CaptureFixture[str]
) -> None:
    keypad = make_keypad()
    fake_dev.plug(keypad)
    assert main(["buttons", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{keypad.node}  05a4:9881  'Acme USB Keypad'  8 keys  LEDs: LED_NUML, LED_CAPSL" in out
    assert f"    {keypad.link}" in out
    assert main(["buttons", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["vid_pid"] == "05a4:9881"
    assert "KEY_F1" in row["keys"]
    assert row["leds"] == ["LED_NUML", "LED_CAPSL"]


def test_this_machine_has_no_input_devices_and_says_so() -> None:
    # The real path: python-evdev on /dev/input. This machine has none (a VM's system test has).
    folder = Path("/dev/input")
    if folder.is_dir() and any(p.name.startswith("event") for p in folder.iterdir()):
        pytest.skip("this machine has input devices")
    for args in (["listen", "--seconds", "1"], ["list"]):
        done = subprocess.run(
            [sys.executable, "-m", "tribune", "buttons", *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
            check=False,
        )
        assert done.returncode == 4, done
        assert done.stderr == "tribune: no input devices found in /dev/input\n"
        assert "Traceback" not in done.stdout


def test_config_check_names_the_line_of_a_key_the_profile_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ROOM_TOML.format(projector="x", board="x", switcher="x") + BUTTONS_TOML.format(
        link="/dev/input/by-id/usb-Acme_USB_Keypad-event-kbd", grab="true"
    )
    path = tmp_path / "room.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    line = next(n for n, s in enumerate(text.splitlines(), 1) if s.startswith("KEY_F12"))
    assert capsys.readouterr().out == (
        f"{path}:{line}: buttons.keypads.desk.keys.KEY_F12.press: "
        "projector has no action 'volume_up' (actions: none)\n"
    )
