"""The device runtime against the PJLink simulator over real TCP sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus, Source
from tribune.errors import AuthenticationError, DeviceBusyError, DeviceTimeoutError, LinkError
from tribune.profiles.schema import Profile
from tribune.sim import Power, RunningSimulator, start_simulator


def fast(profile: Profile, **timing: Any) -> Profile:
    """A copy of `profile` with shorter timing, so tests do not wait like a real projector."""
    defaults: dict[str, Any] = {"reply_timeout": 0.5, "busy_retry_delay": 0.1}
    return profile.model_copy(
        update={"timing": profile.timing.model_copy(update={**defaults, **timing})}
    )


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=50, password="secret") as s:
        yield s


@pytest.fixture
async def runtime(sim: RunningSimulator, pjlink_profile: Profile) -> AsyncIterator[DeviceRuntime]:
    rt = DeviceRuntime(
        "projector", fast(pjlink_profile), f"tcp://127.0.0.1:{sim.port}", password="secret"
    )
    await rt.start()
    yield rt
    await rt.stop()


async def wait_for(predicate: Any, timeout: float = 5.0) -> float:
    """Wait until `predicate()` holds; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_power_on_reports_warming_then_on(runtime: DeviceRuntime) -> None:
    assert await runtime.get("power") == "off"
    await runtime.set("power", "on")
    assert await runtime.get("power") == "warming"
    await wait_for(lambda: runtime.state["power"].value == "on", timeout=5)
    assert runtime.health.status is HealthStatus.ONLINE
    await runtime.set("input", "digital2")
    assert await runtime.get("input") == "digital2"
    assert runtime.state["input"].source is Source.REPLY


async def test_input_while_warming_is_retried_not_failed(runtime: DeviceRuntime) -> None:
    """PJLink ERR3 (unavailable time) during warm-up means "later", not "failed"."""
    await runtime.set("power", "on")
    await runtime.set("input", "rgb1")  # the simulator answers ERR3 until warm-up ends
    assert await runtime.get("input") == "rgb1"
    assert await runtime.get("power") == "on"


async def test_busy_gives_up_after_busy_max_wait(
    sim: RunningSimulator, pjlink_profile: Profile
) -> None:
    profile = fast(pjlink_profile, busy_max_wait=0.5)
    rt = DeviceRuntime("p", profile, f"tcp://127.0.0.1:{sim.port}", password="secret", poll=False)
    await rt.start()
    try:
        sim.faults.busy = True
        started = time.monotonic()
        with pytest.raises(DeviceBusyError):
            await rt.set("power", "on")
        assert 0.3 < time.monotonic() - started < 2
        sim.faults.busy = False
        await rt.set("power", "on")
    finally:
        await rt.stop()


async def test_wrong_password_is_an_authentication_error(
    sim: RunningSimulator, pjlink_profile: Profile
) -> None:
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{sim.port}", password="nope")
    await rt.start()
    try:
        with pytest.raises(AuthenticationError):
            await rt.get("power")
        assert rt.health.status is HealthStatus.ERROR
        assert "password" in (rt.health.last_error or "").lower()
    finally:
        await rt.stop()


async def test_missing_password_is_an_authentication_error(
    sim: RunningSimulator, pjlink_profile: Profile
) -> None:
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{sim.port}", poll=False)
    await rt.start()
    try:
        with pytest.raises(AuthenticationError, match="requires a password"):
            await rt.get("power")
    finally:
        await rt.stop()


async def test_unreachable_device_fails_fast(pjlink_profile: Profile) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    rt = DeviceRuntime("p", fast(pjlink_profile), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        with pytest.raises(LinkError):
            await asyncio.wait_for(rt.get("power"), 5)
        assert rt.health.status is HealthStatus.OFFLINE
    finally:
        await rt.stop()


async def test_set_points_are_coalesced(runtime: DeviceRuntime, sim: RunningSimulator) -> None:
    """A dragged control sends the last value, not every intermediate one."""
    await runtime.set("power", "on")
    await wait_for(lambda: runtime.state.get("power") is not None)
    await asyncio.sleep(0.8)  # warm-up is 30 s / speed 50
    sent: list[bytes] = []
    original = runtime.link.request

    async def counting(payload: bytes, accept: Any, timeout: float) -> Any:
        sent.append(payload)
        return await original(payload, accept, timeout)

    runtime.link.request = counting  # type: ignore[method-assign]
    sim.faults.delay = 0.2  # keep the first exchange in flight while the rest queue up
    values = ["rgb1", "rgb2", "digital1", "digital2", "rgb1", "digital2", "network1"]
    await asyncio.gather(*(runtime.set("input", v) for v in values))
    sim.faults.delay = 0
    input_sets = [p for p in sent if p.startswith(b"%1INPT ") and not p.endswith(b"?")]
    assert len(input_sets) <= 2, input_sets
    assert input_sets[-1] == b"%1INPT 51"
    assert await runtime.get("input") == "network1"


async def test_restart_offline_then_back_with_state_reread(
    runtime: DeviceRuntime, sim: RunningSimulator
) -> None:
    await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE)
    await wait_for(lambda: "lamp_hours" in runtime.state)
    events: list[DeviceEvent] = []
    runtime.subscribe(events.append)
    await sim.stop_tcp()
    # Offline within two reply timeouts (a refused reconnect is seen at once).
    elapsed = await wait_for(lambda: runtime.health.status is HealthStatus.OFFLINE, timeout=10)
    assert elapsed < 2 * runtime.timing.reply_timeout
    await asyncio.sleep(1.5)
    back = time.time()
    await sim.start_tcp()
    elapsed = await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE, timeout=15)
    assert elapsed < 5.0
    # Re-read: power is read again after the return.
    await wait_for(lambda: runtime.state["power"].at >= back, timeout=2.0)
    kinds = [e.kind for e in events]
    assert "health" in kinds


async def test_silent_device_goes_offline_within_two_timeouts(
    runtime: DeviceRuntime, sim: RunningSimulator
) -> None:
    await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE)
    sim.faults.drop = 1000
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError):
        await runtime.get("power")
    assert runtime.health.status.value == "offline"
    assert time.monotonic() - started < 2 * runtime.timing.reply_timeout + 0.5
    sim.faults.drop = 0
    await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE, timeout=5.0)


async def test_garbage_reply_is_survived(runtime: DeviceRuntime, sim: RunningSimulator) -> None:
    await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE)
    sim.faults.garbage = 1
    assert await runtime.get("power") == "off"  # the retry's answer, not the garbage
    assert runtime.health.status is HealthStatus.ONLINE


async def test_hang_up_then_next_command_reconnects(
    runtime: DeviceRuntime, sim: RunningSimulator
) -> None:
    await wait_for(lambda: runtime.health.status is HealthStatus.ONLINE)
    sim.faults.hang_up_after = 1
    # The hang-up fails the exchange in flight; the runtime reopens and retries once.
    assert await runtime.get("lamp_hours") >= 0  # type: ignore[operator]
    assert runtime.health.status is HealthStatus.ONLINE


async def test_busy_job_does_not_hold_up_others(pjlink_profile: Profile) -> None:
    """While an input change waits out the warm-up, other commands still run at once."""
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=1) as slow:
        profile = fast(pjlink_profile, busy_retry_delay=0.2)
        rt = DeviceRuntime("p", profile, f"tcp://127.0.0.1:{slow.port}", poll=False)
        await rt.start()
        try:
            await rt.set("power", "on")  # warm-up takes 30 s at speed 1
            pending = asyncio.ensure_future(rt.set("input", "digital2"))
            await asyncio.sleep(0.3)
            assert not pending.done()
            started = time.monotonic()
            assert await rt.get("power") == "warming"
            assert time.monotonic() - started < 0.5
            # A newer choice merges into the waiting one: one change, the latest value.
            newer = asyncio.ensure_future(rt.set("input", "rgb1"))
            slow.sim.power.force(Power.ON)
            await asyncio.wait_for(asyncio.gather(pending, newer), 3)
            assert await rt.get("input") == "rgb1"
        finally:
            await rt.stop()
