"""What the round-trip tests share: cases, the scaled profile, the running device, waits.

A round trip drives a shipped profile against its simulator (written from the protocol
documents, not from the profiles) over TCP or a line-checked pty. Timing, the profile's and
the simulator's, is divided by `SPEED` so a warm-up takes well under a second.

A test module lists its `CASES` and parametrises the `device` fixture (tests/roundtrip's
conftest.py) with them: `pytestmark = over(CASES)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tribune.drivers.capabilities import CompiledCapability, Value
from tribune.drivers.runtime import DeviceRuntime
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import POWER_STATES, Profile, ValueType
from tribune.sim import Power, RunningSimulator, start_simulator

SPEED = 50.0
POLL_SECONDS = 1.5


@dataclass(frozen=True)
class Case:
    """One profile on one kind of link to one simulator."""

    name: str
    profile: str
    sim: str = ""  # the simulator's name; the profile's when empty
    pty: bool = False
    password: str | None = None
    # Options for the simulator (the PJLink class, say) and for the runtime (the profile's own).
    sim_options: dict[str, Any] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    # Whether the device has a power state (displays and projectors do, switchers do not).
    has_power: bool = True
    # ESC/VP21 answers `PWR ON` / `PWR OFF` with its `:` only once the lamp is lit / the
    # projector has stopped, so the set itself spans the transition and no reading sees it.
    power_set_spans_transition: bool = False

    def __post_init__(self) -> None:
        if not self.sim:
            object.__setattr__(self, "sim", self.profile)


def over(cases: list[Case]) -> pytest.MarkDecorator:
    """Run a module's tests once a case: parametrises the `device` fixture."""
    return pytest.mark.parametrize(
        "device", cases, ids=[case.name for case in cases], indirect=True
    )


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
    """A running simulator and the scaled profile and link that drive it."""

    case: Case
    sim: RunningSimulator
    profile: Profile
    url: str

    def runtime(self, *, poll: bool = False) -> DeviceRuntime:
        """A runtime on this device's link (not started)."""
        return DeviceRuntime(
            self.case.name,
            self.profile,
            self.url,
            options=self.case.options,
            password=self.case.password,
            poll=poll,
        )

    def power_on(self) -> None:
        """Skip the warm-up: the device is on."""
        if self.case.has_power:
            self.sim.sim.power.force(Power.ON)


@asynccontextmanager
async def running(case: Case, profiles: ProfileLoader) -> AsyncIterator[Device]:
    """The case's simulator, serving TCP or a line-checked pty."""
    profile = scaled(profiles.load(case.profile).profile, SPEED)
    options: dict[str, Any] = dict(case.sim_options)
    if case.password is not None:
        options["password"] = case.password
    if case.pty:
        endpoint: dict[str, Any] = {"pty": True, "check_line": True}
    else:
        endpoint = {"tcp": ("127.0.0.1", 0)}
    async with start_simulator(case.sim, speed=SPEED, **endpoint, **options) as sim:
        url = sim.path if case.pty else f"tcp://127.0.0.1:{sim.port}"
        yield Device(case, sim, profile, url)


@asynccontextmanager
async def polling(device: Device, caplog: pytest.LogCaptureFixture) -> AsyncIterator[DeviceRuntime]:
    """A polling runtime on the device, switched on, once its poll plan ran `POLL_SECONDS`.

    The drivers' INFO and above go to `caplog` meanwhile; the runtime stops on leaving.
    """
    device.power_on()
    caplog.set_level(logging.INFO, logger="tribune.drivers")
    rt = device.runtime(poll=True)
    await rt.start()
    try:
        await asyncio.sleep(POLL_SECONDS)
        yield rt
    finally:
        await rt.stop()


# --- what the simulated model has --------------------------------------------------------------

# Profiles list every input of the family; each simulated model has only some of them, and
# selecting one it lacks is refused as on a real device. So the inputs to try come from the
# simulator's own state, not from the profile: whether the model has an input's wire value.
HAS_INPUT: dict[str, Callable[[Any, str], bool]] = {
    "pjlink": lambda state, wire: wire in state.inputs,
    "epson-escvp21": lambda state, wire: wire in state.sources,
    "nec-projector": lambda state, wire: int(wire, 16) in state.inputs,
    "smart-board": lambda state, wire: wire.lower() in state.inputs,
    "samsung-mdc": lambda state, wire: int(wire, 16) in state.inputs,
    "panasonic-projector": lambda state, wire: wire in state.inputs,
    "sony-projector": lambda state, wire: int(wire, 16) in state.inputs,
    "lg-display": lambda state, wire: int(wire, 16) in state.inputs,
    "cisco-roomos": lambda state, wire: int(wire, 16) in state.inputs,
}


def has_wire_value(device: Device, cap: str, wire: str) -> bool:
    """Whether the simulated model has this wire value (an input it really has, say)."""
    has_input = HAS_INPUT.get(device.case.sim)
    if cap != "input" or has_input is None:
        return True
    return has_input(device.sim.state, wire)


def values_to_try(device: Device, cap: CompiledCapability) -> list[Value]:
    """A few valid values of a settable capability that the simulated model accepts."""
    if cap.type is ValueType.BOOL:
        return [True, False, True, False]
    if cap.type is ValueType.LEVEL:
        return [0, 35, 100, 60]
    if cap.type is ValueType.ROUTE:
        # Each output gets a few inputs in turn; 0 unties it (Extron X@ = 0, Kramer IN = 0).
        return [{out: src} for src in ("2", "4", "0", "1") for out in cap.spec.outputs or []]
    if cap.type is ValueType.ENUM and cap.spec.values is not None:
        # Semantic names that share a wire value read back as the first of them: try that one.
        seen: set[str] = set()
        chosen: list[Value] = []
        for name, wire in cap.spec.values.items():
            if wire not in seen and has_wire_value(device, cap.name, wire):
                chosen.append(name)
            seen.add(wire)
        return chosen
    raise AssertionError(f"{cap.name}: no test values for type {cap.type}")


def assert_sensible(cap: CompiledCapability, value: Value) -> None:
    """A reading has the capability's type and lies in its domain."""
    if cap.type is ValueType.POWER:
        assert value in POWER_STATES, value
    elif cap.type is ValueType.BOOL:
        assert isinstance(value, bool), value
    elif cap.type is ValueType.LEVEL:
        assert isinstance(value, int), value
        assert 0 <= value <= 100, value
    elif cap.type is ValueType.INT:
        assert isinstance(value, int), value
        assert value >= 0, value
    elif cap.type is ValueType.ENUM:
        names = set(cap.spec.values or {}) | set((cap.spec.read or {}).values())
        assert value in names, value
    elif cap.type is ValueType.TEXT:
        assert isinstance(value, str), value
        assert value, f"{cap.name} is empty"
    elif cap.type is ValueType.ROUTE:
        assert isinstance(value, dict), value
        assert all(src.isdigit() for src in value.values()), value
    else:
        raise AssertionError(f"{cap.name}: unexpected type {cap.type}")


# --- waiting and logs --------------------------------------------------------------------------


async def wait_for(
    rt: DeviceRuntime, cap: str, want: str, timeout: float = 5.0, interval: float = 0.05
) -> list[Value]:
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
        await asyncio.sleep(interval)


async def wait_for_power(
    rt: DeviceRuntime, want: str, timeout: float = 5.0, interval: float = 0.05
) -> list[Value]:
    """Read power until it is `want`; returns every distinct reading on the way."""
    return await wait_for(rt, "power", want, timeout, interval)


async def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def settled(device: Device, state: Power, timeout: float = 5.0) -> None:
    """Wait until the simulated device is in `state`."""
    deadline = time.monotonic() + timeout
    while device.sim.sim.power.state is not state:
        assert time.monotonic() < deadline, device.sim.sim.power.state
        await asyncio.sleep(0.05)


def driver_problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warnings and errors the drivers logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("tribune.drivers") and r.levelno >= logging.WARNING
    ]


def failed_polls(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines about polls that failed."""
    return [r.getMessage() for r in caplog.records if "poll of" in r.getMessage()]
