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
from collections.abc import Callable
from typing import cast

import pytest

from tests.roundtrip.harness import (
    Case,
    Device,
    assert_sensible,
    driver_problems,
    failed_polls,
    over,
    polling,
    values_to_try,
    wait_for_power,
)
from tribune.drivers.capabilities import Value
from tribune.drivers.codecs.base import Frame
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus
from tribune.profiles.schema import ValueType
from tribune.profiles.templates import ReplyPattern, compile_reply, compile_send
from tribune.sim import Power, RunningSimulator
from tribune.sim.pjlink import PjlinkSimulator

CASES = [
    Case("pjlink-class1", "pjlink", sim_options={"class_": 1}),
    Case("pjlink-class1-password", "pjlink", password="secret", sim_options={"class_": 1}),
    # A class 2 projector still answers every class 1 command.
    Case("pjlink-on-class2", "pjlink", sim_options={"class_": 2}),
    Case("pjlink-class2", "pjlink-class2", "pjlink", sim_options={"class_": 2}),
    Case(
        "pjlink-class2-password",
        "pjlink-class2",
        "pjlink",
        password="secret",
        sim_options={"class_": 2},
    ),
    Case("epson-escvpnet", "epson-escvp21", power_set_spans_transition=True),
    Case("epson-serial", "epson-escvp21", pty=True, power_set_spans_transition=True),
    Case("nec-tcp", "nec-projector"),
    Case("nec-serial", "nec-projector", pty=True),
]

pytestmark = over(CASES)


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


# --- the round trips ---------------------------------------------------------------------------


async def test_every_readable_capability_reads(device: Device, runtime: DeviceRuntime) -> None:
    device.power_on()
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
    device.power_on()
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
    else:
        assert await wait_for_power(runtime, "off") == ["cooling", "off"]
    # Epson acknowledges only when warm or cool: the runtime says warming/cooling meanwhile.
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
    device.power_on()
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
    device.power_on()
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
    async with polling(device, caplog) as rt:
        polled = {entry.get for entry in device.profile.poll}
        assert polled <= set(rt.state), polled - set(rt.state)
        assert rt.health.status is HealthStatus.ONLINE
    problems = driver_problems(caplog)
    assert not problems, problems
    assert not failed_polls(caplog)
