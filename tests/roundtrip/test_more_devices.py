"""Sony, Panasonic, LG and Cisco profiles round-trip against their simulators.

The simulators are written from the protocol documents, not from the profiles: a profile that
reads, sets, powers, acts and polls cleanly here speaks the documented protocol. Timing (the
profile's and the simulator's) is divided by `SPEED`.

Sony runs over a raw TCP socket (serial-over-IP) only: its line is 8E1 and some kernels refuse
parity on a pty, so pyserial cannot open one there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tribune.drivers.capabilities import CompiledCapability, Value
from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import POWER_STATES, Profile, ValueType
from tribune.sim import Power, RunningSimulator, start_simulator

SPEED = 50.0
POLL_SECONDS = 1.5


@dataclass(frozen=True)
class Case:
    """One profile on one kind of link; the simulator has the profile's id."""

    name: str
    profile: str
    pty: bool = False


CASES = [
    Case("sony-tcp", "sony-projector"),
    Case("panasonic-tcp", "panasonic-projector"),
    Case("panasonic-serial", "panasonic-projector", pty=True),
    Case("lg-tcp", "lg-display"),
    Case("lg-serial", "lg-display", pty=True),
    Case("cisco-tcp", "cisco-roomos"),
    Case("cisco-serial", "cisco-roomos", pty=True),
]


def scaled(profile: Profile, speed: float) -> Profile:
    """`profile` with its timing and poll plan divided by `speed`, like the simulator's."""
    timing = profile.timing
    fast = timing.model_copy(
        update={
            "gap": timing.gap / speed,
            "reply_timeout": max(0.5, timing.reply_timeout / speed),
            "warmup": timing.warmup / speed,
            "cooldown": timing.cooldown / speed,
            "busy_retry_delay": max(0.02, timing.busy_retry_delay / speed),
            "busy_max_wait": timing.busy_max_wait / speed,
            "reconnect_min": 0.1,
            "reconnect_max": 0.5,
        }
    )
    poll = [e.model_copy(update={"every": max(0.1, e.every / speed)}) for e in profile.poll]
    return profile.model_copy(update={"timing": fast, "poll": poll})


@dataclass
class Device:
    """A running simulator and the scaled profile that drives it."""

    case: Case
    sim: RunningSimulator
    profile: Profile
    url: str

    def runtime(self, *, poll: bool = False) -> DeviceRuntime:
        """A runtime on this device's link (not started)."""
        return DeviceRuntime(self.case.name, self.profile, self.url, poll=poll)


@pytest.fixture(scope="module")
def loader() -> ProfileLoader:
    """The shipped profiles."""
    return ProfileLoader()


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
async def device(request: pytest.FixtureRequest, loader: ProfileLoader) -> AsyncIterator[Device]:
    """The case's simulator, serving TCP or a line-checked pty."""
    case: Case = request.param
    profile = scaled(loader.load(case.profile).profile, SPEED)
    endpoint: dict[str, Any] = (
        {"pty": True, "check_line": True} if case.pty else {"tcp": ("127.0.0.1", 0)}
    )
    async with start_simulator(case.profile, speed=SPEED, **endpoint) as sim:
        url = sim.path if case.pty else f"tcp://127.0.0.1:{sim.port}"
        yield Device(case, sim, profile, url)


@pytest.fixture
async def runtime(device: Device) -> AsyncIterator[DeviceRuntime]:
    """A started runtime without polls."""
    rt = device.runtime()
    await rt.start()
    yield rt
    await rt.stop()


def has_wire_value(device: Device, cap: str, wire: str) -> bool:
    """Whether the simulated model has this input (profiles list every input of the family)."""
    if cap != "input":
        return True
    inputs = device.sim.state.inputs
    if device.case.profile == "panasonic-projector":
        return wire in inputs
    return int(wire, 16) in inputs


def values_to_try(device: Device, cap: CompiledCapability) -> list[Value]:
    """A few valid values the simulated model accepts."""
    if cap.type is ValueType.BOOL:
        return [True, False, True, False]
    if cap.type is ValueType.LEVEL:
        return [0, 35, 100, 60]
    if cap.type is ValueType.ENUM and cap.spec.values is not None:
        seen: set[str] = set()
        chosen: list[Value] = []
        for name, wire in cap.spec.values.items():
            if wire not in seen and has_wire_value(device, cap.name, wire):
                chosen.append(name)
            seen.add(wire)
        return chosen
    raise AssertionError(f"{cap.name}: no test values for type {cap.type}")


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


def assert_sensible(cap: CompiledCapability, value: Value) -> None:
    """A reading has the capability's type and lies in its domain."""
    if cap.type is ValueType.POWER:
        assert value in POWER_STATES, value
    elif cap.type is ValueType.BOOL:
        assert isinstance(value, bool), value
    elif cap.type in (ValueType.LEVEL, ValueType.INT):
        assert isinstance(value, int), value
        assert value >= 0, value
    elif cap.type is ValueType.ENUM:
        names = set(cap.spec.values or {}) | set((cap.spec.read or {}).values())
        assert value in names, value
    else:
        assert isinstance(value, str), value
        assert value, f"{cap.name} is empty"


async def wait_for(rt: DeviceRuntime, cap: str, want: str, timeout: float = 5.0) -> list[Value]:
    """Read `cap` until it is `want`; returns every distinct reading on the way."""
    seen: list[Value] = []
    deadline = time.monotonic() + timeout
    while True:
        value = await rt.get(cap)
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == want:
            return seen
        assert time.monotonic() < deadline, f"{cap} never became {want}: {seen}"
        await asyncio.sleep(0.05)


async def settled(device: Device, state: Power, timeout: float = 5.0) -> None:
    """Wait until the simulated device is in `state`."""
    deadline = time.monotonic() + timeout
    while device.sim.sim.power.state is not state:
        assert time.monotonic() < deadline, device.sim.sim.power.state
        await asyncio.sleep(0.05)


async def test_every_readable_capability_reads(device: Device, runtime: DeviceRuntime) -> None:
    device.sim.sim.power.force(Power.ON)
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
    device.sim.sim.power.force(Power.ON)
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
    device.sim.sim.power.force(Power.ON)
    caplog.set_level(logging.INFO, logger="tribune.drivers")
    rt = device.runtime(poll=True)
    await rt.start()
    try:
        await asyncio.sleep(POLL_SECONDS)
        polled = {entry.get for entry in device.profile.poll}
        assert polled <= set(rt.state), polled - set(rt.state)
        assert rt.health.status is HealthStatus.ONLINE
    finally:
        await rt.stop()
    problems = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tribune.drivers") and r.levelno >= logging.WARNING
    ]
    assert not problems, problems
