"""Sony, Panasonic, LG and Cisco profiles round-trip against their simulators.

The simulators are written from the protocol documents, not from the profiles: a profile that
reads, sets, powers, acts and polls cleanly here speaks the documented protocol. Timing (the
profile's and the simulator's) is divided by `SPEED`.

Sony runs over a raw TCP socket (serial-over-IP) only: its line is 8E1 and some kernels refuse
parity on a pty, so pyserial cannot open one there.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.roundtrip.harness import (
    Case,
    Device,
    assert_sensible,
    driver_problems,
    over,
    polling,
    settled,
    values_to_try,
    wait_for,
)
from tribune.drivers.capabilities import Value
from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.profiles.schema import ValueType
from tribune.sim import Power, RunningSimulator

# The simulator has the profile's id.
CASES = [
    Case("sony-tcp", "sony-projector"),
    Case("panasonic-tcp", "panasonic-projector"),
    Case("panasonic-serial", "panasonic-projector", pty=True),
    Case("lg-tcp", "lg-display"),
    Case("lg-serial", "lg-display", pty=True),
    Case("cisco-tcp", "cisco-roomos"),
    Case("cisco-serial", "cisco-roomos", pty=True),
]

pytestmark = over(CASES)


EXPECTED: dict[tuple[str, str], Callable[[RunningSimulator], Value]] = {
    ("sony-projector", "lamp_hours"): lambda sim: sim.state.lamp_hours,
    ("sony-projector", "firmware"): lambda sim: f"{sim.state.rom_version:04x}",
    ("sony-projector", "errors"): lambda sim: f"{sim.state.errors:04x}",
    ("panasonic-projector", "lamp_hours"): lambda sim: sim.state.lamp_hours,
    ("panasonic-projector", "lamp_state"): lambda sim: "on",
    ("lg-display", "serial"): lambda sim: sim.state.serial_number,
    ("cisco-roomos", "model"): lambda sim: sim.state.product_id,
    ("cisco-roomos", "firmware"): lambda sim: sim.state.software_version,
    ("cisco-roomos", "serial"): lambda sim: sim.state.serial_number,
    ("cisco-roomos", "call"): lambda sim: "idle",
}


async def test_every_readable_capability_reads(device: Device, runtime: DeviceRuntime) -> None:
    device.power_on()
    readable = [cap for cap in runtime.compiled.capabilities.values() if cap.readable]
    assert readable
    for cap in readable:
        value = await runtime.get(cap.name)
        assert_sensible(cap, value)
        expected = EXPECTED.get((device.case.profile, cap.name))
        if expected is not None:
            assert value == expected(device.sim), cap.name
    assert runtime.health.status is HealthStatus.ONLINE


async def test_every_settable_capability_round_trips(
    device: Device, runtime: DeviceRuntime
) -> None:
    device.power_on()
    settable = [c for c in runtime.compiled.capabilities.values() if c.settable]
    assert settable
    for cap in settable:
        if cap.type is ValueType.POWER:
            continue  # its own test: warm-up and cool-down
        values = values_to_try(device, cap)
        assert len(values) >= 2, f"{cap.name}: the simulated model accepts too few values"
        for value in values:
            await runtime.set(cap.name, value)
            got = await runtime.get(cap.name)
            assert got == value, f"{cap.name}: set {value!r}, read {got!r}"


async def test_power_cycle(device: Device, runtime: DeviceRuntime) -> None:
    if "power" not in runtime.compiled.capabilities:
        pytest.skip("no power capability (codec)")
    assert await runtime.get("power") == "off"
    await runtime.set("power", "on")
    seen = await wait_for(runtime, "power", "on")
    assert set(seen) <= {"warming", "on"}, seen
    # Panasonic QPW and LG `ka ff` know no transition state: they read "on" while warming,
    # and "off" is refused as busy (ER401, NG03) until the warm-up ends.
    await runtime.set("power", "off")
    seen = await wait_for(runtime, "power", "off")
    assert set(seen) <= {"on", "cooling", "off"}, seen
    await settled(device, Power.OFF)


async def test_settings_during_warm_up_wait_for_it(device: Device, runtime: DeviceRuntime) -> None:
    if "power" not in runtime.compiled.capabilities:
        pytest.skip("no power capability (codec)")
    target = values_to_try(device, runtime.compiled.capability("input"))[-1]
    power = device.sim.sim.power
    await runtime.set("power", "on")
    assert power.state.value == "warming"
    await runtime.set("input", target)  # refused as busy until the warm-up ends
    assert power.state.value == "on"
    assert await runtime.get("input") == target


async def test_codec_actions_dial_preset_and_hang_up(
    device: Device, runtime: DeviceRuntime
) -> None:
    if not runtime.compiled.actions:
        pytest.skip("no actions")
    assert await runtime.get("call") == "idle"
    await runtime.action("dial", {"number": "room42@example.com"})
    assert await wait_for(runtime, "call", "connected") == ["idle", "connected"]
    await runtime.action("camera_preset", {"preset": "2"})
    assert device.sim.state.active_preset == 2
    await runtime.action("hangup")
    assert await runtime.get("call") == "idle"
    assert not device.sim.state.calls


async def test_poll_plan_runs_clean_and_stays_online(
    device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    async with polling(device, caplog) as rt:
        polled = {entry.get for entry in device.profile.poll}
        assert polled <= set(rt.state), polled - set(rt.state)
        assert rt.health.status is HealthStatus.ONLINE
    problems = driver_problems(caplog)
    assert not problems, problems
