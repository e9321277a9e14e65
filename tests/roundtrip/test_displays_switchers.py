"""Switcher, board and display profiles round-trip against their simulators, over TCP and ptys.

Extron SIS and Kramer Protocol 3000 switchers, the SMART Board and Samsung MDC displays. The
simulators are written from the protocol documents, not from the profiles, so a profile that
reads, sets, ties, powers and polls cleanly here speaks the documented protocol. Timing (the
profile's and the simulator's) is divided by `SPEED`; ptys check the line settings the profile
puts on the port, as a real device hears only noise at the wrong speed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

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
    wait_until,
)
from tribune.drivers.capabilities import CompiledCapability, Value
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus, Source
from tribune.errors import DeviceRefusedError
from tribune.profiles.schema import ValueType
from tribune.sim import Power, RunningSimulator

CASES = [
    # Switchers have no power state; they greet, tie and report.
    Case("extron-telnet", "extron-sis", has_power=False),  # greets with its copyright banner
    Case("extron-serial", "extron-sis", pty=True, has_power=False),
    Case("kramer-tcp", "kramer-p3000", has_power=False),
    Case("kramer-serial", "kramer-p3000", pty=True, has_power=False),
    Case("smart-serial", "smart-board", pty=True),  # RS-232 only, 19200 8N1
    # The simulated display has id 01 (menu: ID Setting); the profile's default is 00.
    Case("samsung-tcp", "samsung-mdc", options={"id": "01"}),
    Case("samsung-serial", "samsung-mdc", pty=True, options={"id": "01"}),
]

pytestmark = over(CASES)


def sim_route(device: Device) -> dict[str, str]:
    """The video tie of every output, as the simulated switcher holds it."""
    return {str(i + 1): str(src) for i, src in enumerate(device.sim.state.video)}


# What some readings must equal, from the simulator's state.
EXPECTED: dict[tuple[str, str], Callable[[RunningSimulator], Value]] = {
    ("extron-sis", "model"): lambda sim: sim.state.part_number,
    ("extron-sis", "firmware"): lambda sim: sim.state.firmware,
    ("extron-sis", "volume"): lambda sim: sim.state.volume,
    ("kramer-p3000", "model"): lambda sim: sim.state.model,
    ("kramer-p3000", "firmware"): lambda sim: sim.state.version,
    ("kramer-p3000", "serial"): lambda sim: sim.state.serial_number,
    ("kramer-p3000", "volume"): lambda sim: sim.state.levels[0],
    ("smart-board", "model"): lambda sim: sim.state.modelnum,
    ("smart-board", "serial"): lambda sim: sim.state.serialnum,
    ("smart-board", "firmware"): lambda sim: sim.state.fwversion,
    ("smart-board", "part_number"): lambda sim: sim.state.partnum,
    ("smart-board", "volume"): lambda sim: sim.state.volume,
    ("samsung-mdc", "model"): lambda sim: sim.state.model,
    ("samsung-mdc", "serial"): lambda sim: sim.state.serial_number,
    ("samsung-mdc", "firmware"): lambda sim: sim.state.software_version,
    ("samsung-mdc", "volume"): lambda sim: sim.state.volume,
}

# Power as each device reports a power cycle: SMART boards keep reporting the old state until
# the transition ends (the runtime calls that warming/cooling); MDC reports only on and off.
TRANSITIONS: dict[str, tuple[list[Value], list[Value]]] = {
    "smart-board": (["warming", "on"], ["cooling", "off"]),
    "samsung-mdc": (["on"], ["off"]),
}


async def read(rt: DeviceRuntime, cap: CompiledCapability) -> Value:
    """Read a capability; a route is read output by output and merged."""
    if cap.type is not ValueType.ROUTE:
        return await rt.get(cap.name)
    ties: dict[str, str] = {}
    for output in cap.spec.outputs or []:
        tie = await rt.get(cap.name, output=output)
        assert isinstance(tie, dict)
        assert tie.keys() == {output}, tie
        ties.update(tie)
    return ties


# --- the round trips ---------------------------------------------------------------------------


async def test_every_readable_capability_reads(device: Device, runtime: DeviceRuntime) -> None:
    device.power_on()
    readable = [cap for cap in runtime.compiled.capabilities.values() if cap.readable]
    assert readable
    for cap in readable:
        value = await read(runtime, cap)
        assert_sensible(cap, value)
        expected = EXPECTED.get((device.case.sim, cap.name))
        if expected is not None:
            assert value == expected(device.sim), cap.name
        if cap.type is ValueType.ROUTE:
            assert value == sim_route(device)
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
            if cap.type is ValueType.ROUTE:
                assert isinstance(value, dict)
                ((output, _),) = value.items()
                got = await runtime.get(cap.name, output=output)
            else:
                got = await runtime.get(cap.name)
            assert got == value, f"{cap.name}: set {value!r}, read {got!r}"
        if cap.type is ValueType.ROUTE:
            assert runtime.state[cap.name].value == sim_route(device)


async def test_power_cycle_goes_through_its_transitions(
    device: Device, runtime: DeviceRuntime
) -> None:
    if not device.case.has_power:
        assert "power" not in runtime.compiled.capabilities
        return
    events: list[Value] = []

    def on_event(event: DeviceEvent) -> None:
        if event.capability == "power" and event.reading is not None:
            events.append(event.reading.value)

    runtime.subscribe(on_event)
    warming, cooling = TRANSITIONS[device.case.sim]
    assert await runtime.get("power") == "off"
    await runtime.set("power", "on")
    assert await wait_for_power(runtime, "on", interval=0.02) == warming
    await runtime.set("power", "off")
    assert await wait_for_power(runtime, "off", interval=0.02) == cooling
    # Only changes are events; the SMART board announces each end of transition itself too.
    # While a power command is in flight the runtime shows "warming"/"cooling" (the display
    # takes seconds to come up even where it never says so), then what the device reports.
    expected = ["off", "warming", *warming, "cooling", *cooling]
    assert [v for i, v in enumerate(events) if i == 0 or events[i - 1] != v] == [
        v for i, v in enumerate(expected) if i == 0 or expected[i - 1] != v
    ]


async def test_commands_during_warm_up_are_refused_as_documented(
    device: Device, runtime: DeviceRuntime
) -> None:
    """Both documents: only power works until the display is on (SMART `invalid cmd`, MDC NAK).

    Neither answer says "later", so the runtime reports a refusal instead of retrying; the room
    waits out the warm-up before it sends them.
    """
    if not device.case.has_power:
        return
    await runtime.set("power", "on")
    assert device.sim.sim.power.state is Power.WARMING
    with pytest.raises(DeviceRefusedError):
        await runtime.set("volume", 40)
    await asyncio.sleep(device.sim.sim.power.remaining + 0.05)
    await runtime.set("volume", 40)
    assert await runtime.get("volume") == 40
    assert runtime.health.status is HealthStatus.ONLINE


async def test_identify_queries_answer(device: Device, runtime: DeviceRuntime) -> None:
    device.power_on()
    assert device.profile.identify
    for entry in device.profile.identify:
        assert entry.get is not None, "identify reads capabilities"
        value = await runtime.get(entry.get)
        assert str(value)
        if entry.expect is not None:
            assert re.search(entry.expect, str(value)), (entry.expect, value)


async def test_unsolicited_reports_update_state_and_spare_replies(device: Device) -> None:
    device.power_on()
    runtime = device.runtime()
    notes: list[bytes] = []
    runtime.subscribe(lambda e: notes.append(e.frame.data) if e.frame is not None else None)
    await runtime.start()
    try:
        await unsolicited_round(device, runtime)
    finally:
        await runtime.stop()
    if device.case.name == "extron-telnet":
        # The banner (copyright line, then the date) came with the first reply, not as it.
        assert notes[0].startswith(b"(c) Copyright 20"), notes
        assert b"Reconfig" in notes


async def unsolicited_round(device: Device, runtime: DeviceRuntime) -> None:
    """Front-panel reports reach the state; replies before and after them stay right."""
    sim: Any = device.sim.sim
    route = runtime.compiled.capabilities.get("route")
    # Connected first: what a device says while nobody listens is lost, as on a real link.
    assert await runtime.get("volume") == EXPECTED[(device.case.sim, "volume")](device.sim)
    if device.case.sim == "extron-sis":
        sim.reconfig()  # an input signal changed: no state, and no harm
        sim.front_panel_tie(3, 2)
    elif device.case.sim == "kramer-p3000":
        sim.front_panel_switch(3, 2)  # `~01@AV 3>2`: audio-follow-video mode
    elif device.case.sim == "smart-board":
        sim.front_panel("volume", "45")
        sim.front_panel("input", "hdmi2")
        await wait_until(lambda: runtime.state.get("input") is not None)
        assert runtime.state["volume"].value == 45
        assert runtime.state["input"].value == "hdmi2"
        assert runtime.state["input"].source is Source.UNSOLICITED
    else:
        return  # MDC displays send nothing on their own
    if route is not None:
        await wait_until(lambda: "route" in runtime.state)
        assert runtime.state["route"].value == {"2": "3"}
        assert runtime.state["route"].source is Source.UNSOLICITED
        assert await read(runtime, route) == sim_route(device)
    for cap in runtime.compiled.capabilities.values():
        if cap.readable:
            assert_sensible(cap, await read(runtime, cap))
    assert runtime.link.frame_errors == 0
    assert runtime.health.status is HealthStatus.ONLINE


async def test_poll_plan_runs_clean_and_stays_online(
    device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    async with polling(device, caplog) as rt:
        polled = {entry.get for entry in device.profile.poll}
        assert polled <= set(rt.state), polled - set(rt.state)
        if "route" in polled:
            assert rt.state["route"].value == sim_route(device)
        assert rt.health.status is HealthStatus.ONLINE
        assert rt.link.frame_errors == 0
    assert not driver_problems(caplog)
    assert not failed_polls(caplog)
