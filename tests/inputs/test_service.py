"""The key service against a fake `/dev/input` and the simulated room.

Real kernel paths the fake stands for: key presses are `struct input_event` records read from
/dev/input/eventN (here a pipe per open fd); unplugging is the read failing with ENODEV (here
end-of-file) and the node vanishing from /dev/input (here a file deleted, seen by the real
inotify watcher); `grab` is the EVIOCGRAB ioctl; LEDs are EV_LED records written to the fd.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time

import pytest
from evdev import ecodes

from tests.inputs.conftest import KeyRig, buttons_config, buttons_from, make_keypad, until
from tribune.inputs.fake import FakeInputSource, FakeKeypad
from tribune.inputs.service import KeyService
from tribune.room import Room


async def test_a_mapped_key_activates_its_scene_audited_as_button(rig: KeyRig) -> None:
    await rig.tap(ecodes.KEY_F1)
    await until(lambda: rig.room.source == "lectern-pc")
    entries = await rig.audit()
    assert [(e["action"], e["actor"], e["detail"]) for e in entries] == [
        ("scene.activate", "desk:KEY_F1", {"scene": "class-start"})
    ]
    assert rig.room.desired["projector"]["power"] == "on"


async def test_grabbed_so_keys_do_not_reach_the_kiosk(rig: KeyRig) -> None:
    # EVIOCGRAB: while the service holds it, another reader (the browser's) gets nothing.
    assert rig.keypad.grabbed_by is not None
    assert rig.keypad.grabs == 1
    other = await rig.source.open(rig.keypad.node or "")
    with pytest.raises(OSError, match="busy"):
        other.grab()
    rig.keypad.press(ecodes.KEY_F4)
    await asyncio.sleep(0.05)
    with pytest.raises(BlockingIOError):  # nothing to read
        os.read(other.read_fd, 24)
    other.close()


async def test_no_grab_when_grab_is_false(room: Room, fake_input: FakeInputSource) -> None:
    keypad = make_keypad()
    fake_input.plug(keypad)
    assert keypad.link is not None
    service = KeyService(room, buttons_config(keypad.link, grab=False), source=fake_input)
    await service.start()
    try:
        await until(lambda: bool(service.open))
        assert keypad.grabs == 0
        assert keypad.grabbed_by is None
    finally:
        await service.stop()


async def test_press_and_long_press_of_one_key(rig: KeyRig) -> None:
    # KEY_F2: press = source:laptop (on release before 0.3 s), long = scene:class-end.
    await rig.tap(ecodes.KEY_F2, hold=0.05)
    await until(lambda: rig.room.source == "laptop")
    assert [e["action"] for e in await rig.audit()] == ["source.select"]
    rig.keypad.press(ecodes.KEY_F2)
    await asyncio.sleep(0.45)  # past the threshold: the long binding runs while still held
    entries = await rig.audit()
    assert [e["action"] for e in entries] == ["source.select", "scene.activate"]
    assert entries[-1]["detail"] == {"scene": "class-end"}
    rig.keypad.release(ecodes.KEY_F2)
    await asyncio.sleep(0.1)
    assert len(await rig.audit()) == 2  # releasing after a long press runs nothing more


async def test_a_long_only_key_ignores_a_short_press(rig: KeyRig) -> None:
    await rig.tap(ecodes.KEY_F3, hold=0.1)
    await asyncio.sleep(0.4)
    assert await rig.audit() == []
    await rig.tap(ecodes.KEY_F3, hold=0.4)
    await until(lambda: "projector" in rig.room.desired)
    assert [e["detail"] for e in await rig.audit()] == [{"scene": "class-end"}]


async def test_holding_volume_up_repeats_at_the_configured_rate(rig: KeyRig) -> None:
    # repeat_delay 0.2 s, repeat_rate 10/s: a 1.0 s hold is the press plus ~9 repeats.
    await rig.room.apply({"board": {"power": "on"}}, who="panel")
    await until(lambda: rig.room.converged, timeout=10)
    rig.keypad.press(ecodes.KEY_VOLUMEUP)
    started = time.monotonic()
    await asyncio.sleep(1.0)
    rig.keypad.release(ecodes.KEY_VOLUMEUP)
    held = time.monotonic() - started
    await asyncio.sleep(0.3)  # nothing more after the release
    steps = [e for e in await rig.audit() if e["action"] == "device.action"]
    expected = 1 + (held - 0.2) * 10
    assert expected - 2 <= len(steps) <= expected + 1, (len(steps), held)
    assert all(e["actor"] == "desk:KEY_VOLUMEUP" for e in steps)
    assert all(e["result"] == "done" for e in steps[:-1])
    times = [float(str(e["at"])) for e in steps[1:]]  # the repeats
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.07 < sum(gaps) / len(gaps) < 0.14  # ~0.1 s apart


async def test_contact_bounce_is_one_press(rig: KeyRig) -> None:
    keypad = rig.keypad
    for _ in range(3):  # a worn switch: down, up, down... within a few milliseconds
        keypad.press(ecodes.KEY_F1)
        keypad.release(ecodes.KEY_F1)
    keypad.press(ecodes.KEY_F1)
    await asyncio.sleep(0.1)
    keypad.release(ecodes.KEY_F1)
    for _ in range(2):
        keypad.press(ecodes.KEY_F1)
        keypad.release(ecodes.KEY_F1)
    await asyncio.sleep(0.2)
    assert len(await rig.audit()) == 1


async def test_hot_unplug_then_replug_works_again_within_2_s(rig: KeyRig) -> None:
    rig.source.unplug(rig.keypad)
    await until(lambda: not rig.service.open)
    await asyncio.sleep(0.2)
    node = rig.source.plug(rig.keypad)  # the kernel gives it a new eventN; by-id is the same
    plugged = time.monotonic()
    await until(lambda: node in rig.service.open, timeout=2.0)
    await rig.opened()
    rig.keypad.press(ecodes.KEY_F1)
    await until(lambda: rig.room.source == "lectern-pc", timeout=2.0)
    assert time.monotonic() - plugged < 2.0
    assert rig.keypad.grabbed_by is not None  # grabbed again
    assert rig.keypad.led(ecodes.LED_NUML)


async def test_led_lit_while_the_class_runs(rig: KeyRig) -> None:
    keypad = rig.keypad
    await until(lambda: ecodes.LED_NUML in keypad.leds)
    assert not keypad.led(ecodes.LED_NUML)
    await rig.tap(ecodes.KEY_F1)
    await until(lambda: keypad.led(ecodes.LED_NUML))
    await rig.room.activate_scene("class-end", who="panel")  # from the panel: the LED follows
    await until(lambda: not keypad.led(ecodes.LED_NUML))
    assert not keypad.led(ecodes.LED_CAPSL)
    await rig.room.select_source("laptop", who="panel")
    await until(lambda: keypad.led(ecodes.LED_CAPSL))


async def test_led_state_survives_a_service_restart(
    room: Room, fake_input: FakeInputSource
) -> None:
    await room.activate_scene("class-start", who="schedule")
    keypad = make_keypad()
    fake_input.plug(keypad)
    assert keypad.link is not None
    service = KeyService(room, buttons_config(keypad.link), source=fake_input)
    await service.start()
    try:
        await until(lambda: keypad.led(ecodes.LED_NUML))  # from the audit log
    finally:
        await service.stop()


async def test_refused_intents_are_audited_and_the_service_goes_on(
    rig: KeyRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tribune.inputs")
    await rig.tap(ecodes.KEY_F12)  # the PJLink projector has no volume_up action
    await rig.tap(ecodes.KEY_F1)
    await until(lambda: rig.room.source == "lectern-pc")
    entries = await rig.audit()
    assert entries[0]["action"] == "device.action"
    assert str(entries[0]["result"]).startswith("refused: projector has no action 'volume_up'")
    assert entries[0]["actor"] == "desk:KEY_F12"
    assert entries[1]["action"] == "scene.activate"
    assert "refused" in caplog.text
    # And at start the service said so, before anyone pressed anything.
    assert "keys.KEY_F12.press: projector has no action 'volume_up'" in caplog.text or any(
        "KEY_F12" in p for p in rig.service.check_bindings()
    )


async def test_toggle_flips_mute(rig: KeyRig) -> None:
    await rig.tap(ecodes.KEY_MUTE)
    await until(lambda: rig.room.desired.get("switcher", {}).get("mute") is True)
    await asyncio.sleep(0.05)
    await rig.tap(ecodes.KEY_MUTE)
    await until(lambda: rig.room.desired["switcher"]["mute"] is False)


async def test_holding_a_level_step_key_ramps_down_and_stops_at_zero(rig: KeyRig) -> None:
    await rig.room.apply({"switcher": {"volume": 30}}, who="panel")
    rig.keypad.press(ecodes.KEY_VOLUMEDOWN)  # -10 now, then every 0.1 s after 0.2 s
    await until(lambda: rig.room.desired["switcher"]["volume"] == 20)
    await asyncio.sleep(0.55)
    rig.keypad.release(ecodes.KEY_VOLUMEDOWN)
    assert rig.room.desired["switcher"]["volume"] == 0  # held at the end of the scale
    steps = [e for e in await rig.audit() if e["actor"] == "desk:KEY_VOLUMEDOWN"]
    assert [e["detail"] for e in steps[:3]] == [
        {"desired": {"switcher": {"volume": v}}} for v in (20, 10, 0)
    ]


async def test_kernel_auto_repeat_is_ignored(rig: KeyRig) -> None:
    rig.keypad.press(ecodes.KEY_F1)
    for _ in range(5):
        rig.keypad.hold(ecodes.KEY_F1)  # value 2: the kernel's repeat, not ours
    rig.keypad.release(ecodes.KEY_F1)
    await asyncio.sleep(0.2)
    assert len(await rig.audit()) == 1


async def test_one_broken_keypad_does_not_affect_the_other(
    room: Room, fake_input: FakeInputSource, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_keypad()
    bad = FakeKeypad("Broken Pad", keys=[ecodes.KEY_F1], by_id="usb-Broken_Pad-event-kbd")
    fake_input.plug(good)
    fake_input.plug(bad)
    assert bad.node is not None
    assert bad.link is not None
    assert good.link is not None
    fake_input.unreadable.add(bad.node)  # no udev rule for it: EACCES
    text = f"""
[buttons.keypads.desk]
path = "{good.link}"
keys = {{ KEY_F1 = "scene:class-start" }}

[buttons.keypads.side]
path = "{bad.link}"
keys = {{ KEY_F1 = "scene:class-end" }}
"""
    service = KeyService(room, buttons_from(text), source=fake_input)
    await service.start()
    try:
        await until(lambda: good.node in service.open)
        good.press(ecodes.KEY_F1)
        await until(lambda: room.source == "lectern-pc")
        assert "keypad side" in caplog.text
        assert "permission denied" in caplog.text
        assert bad.node not in service.open
        # Given access (udev's chgrp arrives as IN_ATTRIB), it is opened too.
        fake_input.unreadable.discard(bad.node)
        os.utime(bad.node)
        await until(lambda: bad.node in service.open, timeout=7.0)
    finally:
        await service.stop()
    assert good.handles == []  # closed, grabs released
    assert bad.handles == []


async def test_stop_releases_the_grab(rig: KeyRig) -> None:
    await rig.service.stop()
    assert rig.keypad.grabbed_by is None
    assert rig.keypad.handles == []
