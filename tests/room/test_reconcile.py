"""The room against simulated devices: scenes converge through warm-up, cool-down and outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.room.conftest import SimRoom
from tribune.errors import NotSupportedError
from tribune.room import Room, UnknownError
from tribune.sim import Power


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Wait for `predicate`; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def power(sim_room: SimRoom, device: str) -> Power:
    """The simulated device's own power state."""
    state: Power = sim_room.sims[device].sim.power.state
    return state


@pytest.fixture
async def room(sim_room: SimRoom) -> AsyncIterator[Room]:
    room = await sim_room.make()
    await room.start()
    yield room
    await room.stop()
    await room.store.close()


async def test_class_start_converges_and_class_end_turns_everything_off(
    room: Room, sim_room: SimRoom
) -> None:
    await until(lambda: all(rt.health.status.value == "online" for rt in room.runtimes.values()))
    await room.activate_scene("class-start", who="panel")
    assert not room.converged
    await until(lambda: room.converged, timeout=10)
    assert power(sim_room, "projector") is Power.ON
    route = room.runtimes["switcher"].state["route"].value
    assert isinstance(route, dict)
    assert (route["1"], route["2"]) == ("1", "1")
    assert room.source == "lectern-pc"
    snap = room.snapshot()
    assert snap["converged"] is True
    await asyncio.sleep(0.1)
    assert (await room.store.audit_tail())[0].result == "converged"
    assert snap["devices"]["projector"]["status"] == {"power": "converged", "input": "converged"}
    await room.activate_scene("class-end", who="schedule", actor="nightly-off")
    await until(lambda: room.converged, timeout=10)
    assert power(sim_room, "projector") is Power.OFF
    entries = await room.store.audit_tail()
    assert [e.detail.get("scene") for e in entries[:2]] == ["class-end", "class-start"]
    assert entries[0].who == "schedule"


async def test_on_during_cool_down_ends_on_without_error(room: Room, sim_room: SimRoom) -> None:
    await until(lambda: room.runtimes["projector"].health.status.value == "online")
    await room.apply({"projector": {"power": "on"}}, who="panel")
    await until(lambda: room.converged)
    await room.apply({"projector": {"power": "off"}}, who="panel")
    await until(lambda: room.runtimes["projector"].state["power"].value == "cooling")
    await room.apply({"projector": {"power": "on"}}, who="panel")
    status = room.reconcilers["projector"].status["power"]
    assert status.state == "pending"
    await until(lambda: room.converged, timeout=10)
    assert room.runtimes["projector"].state["power"].value == "on"
    failures = [e for e in await room.store.audit_tail() if e.action == "device.failed"]
    assert failures == []


async def test_unplugged_adapter_gets_desired_state_on_return(
    room: Room, sim_room: SimRoom
) -> None:
    board = sim_room.sims["board"]
    await until(lambda: room.runtimes["board"].health.status.value == "online")
    await room.apply({"board": {"power": "on"}}, who="panel")
    await until(lambda: room.converged)
    board.unplug()
    await until(lambda: room.runtimes["board"].health.status.value == "offline", timeout=5)
    assert room.reconcilers["board"].status["power"].state == "pending"
    board.sim.power.force(Power.OFF)  # the board lost power while unplugged
    board.replug()
    await until(lambda: room.converged, timeout=10)
    assert board.sim.power.state is Power.ON


async def test_restart_restores_desired_state_and_converges(sim_room: SimRoom) -> None:
    room = await sim_room.make()
    await room.start()
    await room.activate_scene("class-start", who="api", actor="token:tech")
    await room.stop()
    await room.store.close()
    # The projector is switched off behind our back while the service is down.
    sim_room.sims["projector"].sim.power.force(Power.OFF)
    again = await sim_room.make()
    await again.start()
    try:
        assert again.desired["projector"]["power"] == "on"
        await until(lambda: again.converged, timeout=10)
        assert power(sim_room, "projector") is Power.ON
    finally:
        await again.stop()
        await again.store.close()


async def test_bad_intents_are_refused_with_a_reason(room: Room) -> None:
    with pytest.raises(UnknownError, match="no device"):
        await room.apply({"toaster": {"power": "on"}}, who="api")
    with pytest.raises(NotSupportedError, match="not one of"):
        await room.apply({"projector": {"input": "hdmi9"}}, who="api")
    with pytest.raises(NotSupportedError, match="read-only"):
        await room.apply({"projector": {"lamp_hours": 5}}, who="api")
    with pytest.raises(UnknownError, match="no scene"):
        await room.activate_scene("party", who="panel")
    assert room.desired == {}


async def test_source_routes_every_output_it_names(room: Room, sim_room: SimRoom) -> None:
    await until(lambda: room.runtimes["switcher"].health.status.value == "online")
    await room.select_source("laptop", who="panel")
    await until(lambda: room.converged, timeout=10)
    route = room.runtimes["switcher"].state["route"].value
    assert isinstance(route, dict)
    assert (route["1"], route["2"]) == ("2", "2")
    assert room.source == "laptop"
    await room.select_source("lectern-pc", who="button", actor="KEY_F2")
    await until(lambda: room.converged, timeout=10)
    route = room.runtimes["switcher"].state["route"].value
    assert isinstance(route, dict)
    assert (route["1"], route["2"]) == ("1", "1")


async def test_refused_value_fails_with_the_device_word_and_is_audited(
    room: Room, sim_room: SimRoom
) -> None:
    """The PJLink simulator has no network input: ERR2 is `failed`, not retried for ever."""
    await until(lambda: room.runtimes["projector"].health.status.value == "online")
    await room.apply({"projector": {"power": "on", "input": "storage1"}}, who="api")
    await until(lambda: room.reconcilers["projector"].status.get("input", None) is not None)
    await until(lambda: room.reconcilers["projector"].status["input"].state == "failed", timeout=10)
    reason = room.reconcilers["projector"].status["input"].reason or ""
    assert "ERR2" in reason
    assert not room.converged
    failures = [e for e in await room.store.audit_tail() if e.action == "device.failed"]
    assert failures
    assert failures[0].who == "system"
    # A new intent clears it.
    await room.apply({"projector": {"input": "digital1"}}, who="api")
    await until(lambda: room.converged, timeout=10)


async def test_scheduled_scene_runs_through_the_room(room: Room, sim_room: SimRoom) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from tribune.scheduler import (
        FakeClock,
        MemoryLastRunStore,
        SceneTarget,
        ScheduleEntry,
        Scheduler,
        parse_when,
    )

    tz = ZoneInfo("Asia/Baku")
    start = datetime(2026, 11, 25, 21, 59, 30, tzinfo=tz).astimezone(UTC)
    clock = FakeClock(start)
    entry = ScheduleEntry(
        id="nightly-off",
        recurrence=parse_when("daily 22:00"),
        when="daily 22:00",
        target=SceneTarget("class-end"),
    )

    async def run(item: ScheduleEntry, due: datetime) -> None:
        await room.activate_scene(item.target.scene, who="schedule", actor=item.id)

    scheduler = Scheduler([entry], tz, run, MemoryLastRunStore(), clock=clock)
    task = asyncio.create_task(scheduler.run_forever())
    try:
        await room.activate_scene("class-start", who="panel")
        await clock.next_sleep()
        clock.advance(timedelta(seconds=31))
        await until(lambda: room.desired["projector"]["power"] == "off", timeout=5)
        entries = await room.store.audit_tail()
        assert entries[0].who == "schedule"
        assert entries[0].actor == "nightly-off"
    finally:
        task.cancel()


async def test_blank_and_freeze_end_with_the_class(room: Room, sim_room: SimRoom) -> None:
    """Momentary picture states are dropped when the device is switched off."""
    await until(lambda: room.runtimes["projector"].health.status.value == "online")
    await room.activate_scene("class-start", who="panel")
    await until(lambda: room.converged, timeout=10)
    await room.apply({"projector": {"video_mute": True}}, who="panel")
    await until(lambda: room.converged, timeout=10)
    await room.activate_scene("class-end", who="panel")
    assert "video_mute" not in room.desired["projector"]
    assert "video_mute" not in (await room.store.desired())["projector"]
    await until(lambda: room.converged, timeout=10)
    sim_room.sims["projector"].state.video_mute = False  # as projectors do in standby
    await room.activate_scene("class-start", who="panel")
    await until(lambda: room.converged, timeout=10)
    await asyncio.sleep(0.3)
    assert sim_room.sims["projector"].state.video_mute is False  # not blanked again


async def test_refused_intents_are_audited(room: Room) -> None:
    with pytest.raises(NotSupportedError):
        await room.apply({"projector": {"input": "hdmi9"}}, who="api", actor="token:api")
    entry = (await room.store.audit_tail())[0]
    assert entry.result.startswith("refused:")
    assert entry.actor == "token:api"


async def test_an_input_without_power_waits_quietly(room: Room) -> None:
    """A source chosen while the projector is off is not a pending fault: the room is converged."""
    await until(lambda: room.runtimes["projector"].health.status.value == "online")
    await until(lambda: "power" in room.runtimes["projector"].state)
    await room.apply({"projector": {"input": "digital2"}}, who="panel")
    await until(lambda: room.converged, timeout=5)


async def test_a_broken_device_does_not_stop_a_scene(sim_room: SimRoom, tmp_path: Path) -> None:
    from tribune.config import RoomConfig
    from tribune.store import Store

    text = sim_room.config.model_dump(mode="json")
    text["devices"]["monitor"] = {"profile": "no-such-profile", "port": "/dev/null"}
    text["scenes"]["class-end"]["desired"]["monitor"] = {"power": "off"}
    config = RoomConfig.model_validate(text)
    store = Store(tmp_path / "broken.db")
    await store.open()
    room = Room(config, store)
    await room.start()
    try:
        assert "monitor" in room.broken
        entry = await room.activate_scene("class-end", who="schedule", actor="nightly-off")
        assert "monitor" in entry.detail["skipped"]
        assert room.desired["projector"]["power"] == "off"
    finally:
        await room.stop()
        await store.close()


async def test_the_chosen_source_survives_a_restart(sim_room: SimRoom) -> None:
    room = await sim_room.make()
    await room.start()
    await room.select_source("laptop", who="panel")
    await room.stop()
    await room.store.close()
    again = await sim_room.make()
    await again.start()
    try:
        assert again.source == "laptop"
    finally:
        await again.stop()
        await again.store.close()
