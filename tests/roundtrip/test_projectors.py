"""Every projector profile round-trips against its simulator, over TCP and over a real pty.

The simulators are written from the protocol documents, not from the profiles, so a profile
that reads, sets, powers and polls cleanly here speaks the documented protocol. Timing (the
profile's and the simulator's) is divided by `SPEED` so a warm-up takes well under a second.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from tribune.drivers.capabilities import CompiledCapability, Value
from tribune.drivers.codecs.base import Frame
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import POWER_STATES, Profile, ValueType
from tribune.profiles.templates import ReplyPattern, compile_reply, compile_send
from tribune.sim import Power, RunningSimulator, start_simulator
from tribune.sim.pjlink import PjlinkSimulator

SPEED = 50.0
POLL_SECONDS = 1.5


@dataclass(frozen=True)
class Case:
    """One profile on one kind of link to one simulator."""

    name: str
    profile: str
    sim: str
    pty: bool = False
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # ESC/VP21 answers `PWR ON` / `PWR OFF` with its `:` only once the lamp is lit / the
    # projector has stopped, so the set itself spans the transition and no reading sees it.
    power_set_spans_transition: bool = False


CASES = [
    Case("pjlink-class1", "pjlink", "pjlink", options={"class_": 1}),
    Case("pjlink-class1-password", "pjlink", "pjlink", password="secret", options={"class_": 1}),
    # A class 2 projector still answers every class 1 command.
    Case("pjlink-on-class2", "pjlink", "pjlink", options={"class_": 2}),
    Case("pjlink-class2", "pjlink-class2", "pjlink", options={"class_": 2}),
    Case(
        "pjlink-class2-password",
        "pjlink-class2",
        "pjlink",
        password="secret",
        options={"class_": 2},
    ),
    Case("epson-escvpnet", "epson-escvp21", "epson-escvp21", power_set_spans_transition=True),
    Case(
        "epson-serial", "epson-escvp21", "epson-escvp21", pty=True, power_set_spans_transition=True
    ),
    Case("nec-tcp", "nec-projector", "nec-projector"),
    Case("nec-serial", "nec-projector", "nec-projector", pty=True),
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
    """A running simulator and a runtime driving it through the profile."""

    case: Case
    sim: RunningSimulator
    profile: Profile
    url: str

    def runtime(self, *, poll: bool = False) -> DeviceRuntime:
        """A runtime on this device's link (not started)."""
        return DeviceRuntime(
            self.case.name, self.profile, self.url, password=self.case.password, poll=poll
        )


@pytest.fixture(scope="module")
def loader() -> ProfileLoader:
    """The shipped profiles."""
    return ProfileLoader()


@pytest.fixture(params=CASES, ids=[case.name for case in CASES])
async def device(request: pytest.FixtureRequest, loader: ProfileLoader) -> AsyncIterator[Device]:
    """The case's simulator, serving TCP or a line-checked pty."""
    case: Case = request.param
    profile = scaled(loader.load(case.profile).profile, SPEED)
    options: dict[str, Any] = dict(case.options)
    if case.password is not None:
        options["password"] = case.password
    if case.pty:
        endpoint: dict[str, Any] = {"pty": True, "check_line": True}
    else:
        endpoint = {"tcp": ("127.0.0.1", 0)}
    async with start_simulator(case.sim, speed=SPEED, **endpoint, **options) as sim:
        url = sim.path if case.pty else f"tcp://127.0.0.1:{sim.port}"
        yield Device(case, sim, profile, url)


@pytest.fixture
async def runtime(device: Device) -> AsyncIterator[DeviceRuntime]:
    """A started runtime without polls, so each exchange is the test's own."""
    rt = device.runtime()
    await rt.start()
    yield rt
    await rt.stop()


# --- what the simulated model has --------------------------------------------------------------


def has_wire_value(device: Device, cap: str, wire: str) -> bool:
    """Whether the simulated model has this wire value (an input it really has, say).

    Profiles list every input of the family; each simulated model has only some of them, and
    selecting one it lacks is refused as on a real projector. So the values to try come from
    the simulator's own state, not from the profile.
    """
    state = device.sim.state
    if cap != "input":
        return True
    if device.case.sim == "pjlink":
        return wire in state.inputs
    if device.case.sim == "epson-escvp21":
        return wire in state.sources
    if device.case.sim == "nec-projector":
        return int(wire, 16) in state.inputs
    return True


def values_to_try(device: Device, cap: CompiledCapability) -> list[Value]:
    """A few valid values of a settable capability that the simulated model accepts."""
    if cap.type is ValueType.BOOL:
        return [True, False, True, False]
    if cap.type is ValueType.LEVEL:
        return [0, 35, 100, 60]
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


# Set-only capabilities are checked in the simulator's state instead of by reading them back.
WRITE_ONLY: dict[tuple[str, str], Callable[[RunningSimulator], Value]] = {
    ("nec-projector", "freeze"): lambda sim: bool(sim.state.freeze),
    ("nec-projector", "volume"): lambda sim: round(sim.state.volume * 100 / 63),
}

# What some readings must equal, from the simulator's state.
EXPECTED: dict[tuple[str, str], Callable[[RunningSimulator], Value]] = {
    ("pjlink", "lamp_hours"): lambda sim: sim.state.lamp_hours,
    ("pjlink", "model"): lambda sim: sim.state.model,
    ("pjlink", "vendor_name"): lambda sim: sim.state.manufacturer,
    ("pjlink", "serial"): lambda sim: sim.state.serial_number,
    ("pjlink", "firmware"): lambda sim: sim.state.software_version,
    ("pjlink", "filter_hours"): lambda sim: sim.state.filter_hours,
    ("pjlink", "replacement_lamp"): lambda sim: sim.state.lamp_model,
    ("pjlink", "replacement_filter"): lambda sim: sim.state.filter_model,
    ("pjlink", "input_list"): lambda sim: " ".join(sim.state.inputs),
    ("pjlink", "pjlink_class"): lambda sim: str(cast(PjlinkSimulator, sim.sim).pjlink_class),
    ("epson-escvp21", "lamp_hours"): lambda sim: sim.state.lamp_hours,
    ("epson-escvp21", "serial"): lambda sim: sim.state.serial_number,
    ("nec-projector", "lamp_hours"): lambda sim: sim.state.lamp_seconds // 3600,
}


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
    else:
        raise AssertionError(f"{cap.name}: unexpected type {cap.type}")


async def wait_for_power(rt: DeviceRuntime, want: str, timeout: float = 5.0) -> list[Value]:
    """Read power until it is `want`; returns every reading on the way."""
    seen: list[Value] = []
    deadline = time.monotonic() + timeout
    while True:
        value = await rt.get("power")
        if not seen or seen[-1] != value:
            seen.append(value)
        if value == want:
            return seen
        assert time.monotonic() < deadline, f"power never became {want}: {seen}"
        await asyncio.sleep(0.05)


# --- the round trips ---------------------------------------------------------------------------


async def test_every_readable_capability_reads(device: Device, runtime: DeviceRuntime) -> None:
    device.sim.sim.power.force(Power.ON)
    readable = [cap for cap in runtime.compiled.capabilities.values() if cap.readable]
    assert readable
    for cap in readable:
        value = await runtime.get(cap.name)
        assert_sensible(cap, value)
        expected = EXPECTED.get((device.case.sim, cap.name))
        if expected is not None:
            assert value == expected(device.sim), cap.name
    assert runtime.health.status is HealthStatus.ONLINE


async def test_every_settable_capability_round_trips(
    device: Device, runtime: DeviceRuntime
) -> None:
    device.sim.sim.power.force(Power.ON)
    for cap in runtime.compiled.capabilities.values():
        if not cap.settable or cap.type is ValueType.POWER:
            continue  # power has its own test: it goes through warm-up and cool-down
        values = values_to_try(device, cap)
        assert len(values) >= 2, f"{cap.name}: the simulated model accepts too few values"
        for value in values:
            await runtime.set(cap.name, value)
            if cap.readable:
                got = await runtime.get(cap.name)
            else:
                got = WRITE_ONLY[(device.case.sim, cap.name)](device.sim)
            assert got == value, f"{cap.name}: set {value!r}, read {got!r}"


async def test_power_cycle_goes_through_its_transitions(
    device: Device, runtime: DeviceRuntime
) -> None:
    events: list[Value] = []

    def on_event(event: DeviceEvent) -> None:
        if event.capability == "power" and event.reading is not None:
            events.append(event.reading.value)

    runtime.subscribe(on_event)
    power = device.sim.sim.power
    assert await runtime.get("power") == "off"
    started = time.monotonic()
    await runtime.set("power", "on")
    if device.case.power_set_spans_transition:
        assert time.monotonic() - started >= power.warm_up * 0.9
        assert await wait_for_power(runtime, "on") == ["on"]
    else:
        assert await wait_for_power(runtime, "on") == ["warming", "on"]
    started = time.monotonic()
    await runtime.set("power", "off")
    if device.case.power_set_spans_transition:
        assert time.monotonic() - started >= power.cool_down * 0.9
        assert await wait_for_power(runtime, "off") == ["off"]
        assert events == ["off", "on", "off"]
    else:
        assert await wait_for_power(runtime, "off") == ["cooling", "off"]
        assert events == ["off", "warming", "on", "cooling", "off"]


async def test_commands_queued_behind_power_on_succeed(
    device: Device, runtime: DeviceRuntime
) -> None:
    target = values_to_try(device, runtime.compiled.capability("input"))[-1]
    power_on = asyncio.create_task(runtime.set("power", "on"))
    await asyncio.sleep(0)  # queued first
    await runtime.set("input", target)  # busy until the warm-up ends, then done
    await power_on
    assert device.sim.sim.power.state is Power.ON
    assert await runtime.get("input") == target


async def test_commands_during_warm_up_are_retried_not_failed(
    device: Device, runtime: DeviceRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tribune.drivers")
    target = values_to_try(device, runtime.compiled.capability("input"))[-1]
    assert await runtime.get("power") == "off"
    device.sim.sim.power.force(Power.WARMING)  # someone pressed the remote's power key
    started = time.monotonic()
    await runtime.set("input", target)  # refused as busy until the warm-up ends
    assert device.sim.sim.power.state is Power.ON
    assert time.monotonic() - started > device.sim.sim.power.warm_up * 0.5
    assert "busy" in caplog.text
    assert await runtime.get("input") == target


# What each action moves in the simulator, and by how much.
ACTION_EFFECTS: dict[tuple[str, str], tuple[Callable[[RunningSimulator], int], int]] = {
    ("pjlink", "speaker_volume_up"): (lambda sim: sim.state.speaker_volume, +1),
    ("pjlink", "speaker_volume_down"): (lambda sim: sim.state.speaker_volume, -1),
    ("pjlink", "mic_volume_up"): (lambda sim: sim.state.microphone_volume, +1),
    ("pjlink", "mic_volume_down"): (lambda sim: sim.state.microphone_volume, -1),
    ("epson-escvp21", "volume_up"): (lambda sim: sim.state.volume, +1),
    ("epson-escvp21", "volume_down"): (lambda sim: sim.state.volume, -1),
}


async def test_every_action_runs(device: Device, runtime: DeviceRuntime) -> None:
    device.sim.sim.power.force(Power.ON)
    for name, action in device.profile.actions.items():
        # The one parameterised action (PJLink INNM) names an input the model has.
        params = {p: next(iter(device.sim.state.inputs)) for p in action.params}
        effect = ACTION_EFFECTS.get((device.case.sim, name))
        before = effect[0](device.sim) if effect else 0
        await runtime.action(name, params)
        if effect is not None:
            assert effect[0](device.sim) == before + effect[1], name


def answers(reply: ReplyPattern) -> Callable[[Frame], bool]:
    """A link reply filter: frames the identify pattern matches."""
    return lambda frame: reply.match(frame.data) is not None


async def test_identify_queries_answer(device: Device, runtime: DeviceRuntime) -> None:
    device.sim.sim.power.force(Power.ON)
    binary = device.profile.codec == "binary"
    assert device.profile.identify
    for entry in device.profile.identify:
        if entry.get is not None:
            value = await runtime.get(entry.get)
            if entry.expect is not None:
                assert re.search(entry.expect, str(value)), (entry.get, value)
            continue
        assert entry.send is not None
        assert entry.reply is not None
        payload = compile_send(entry.send, binary=binary).render(runtime.options)
        reply = compile_reply(entry.reply, binary=binary)
        if not runtime.link.is_open:
            await runtime.link.open()
        frame = await runtime.link.request(payload, answers(reply), timeout=1.0)
        assert reply.match(frame.data) is not None


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
        r
        for r in caplog.records
        if r.name.startswith("tribune.drivers") and r.levelno >= logging.WARNING
    ]
    assert not problems, [r.getMessage() for r in problems]
    failed_polls = [r.getMessage() for r in caplog.records if "poll of" in r.getMessage()]
    assert not failed_polls
