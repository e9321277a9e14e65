"""Failure modes found in review: late replies, accept-and-drop peers, stop mid-request,
read-back of unpolled capabilities, actions never sent twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from tests.drivers.test_runtime_pjlink import fast
from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.errors import DeviceTimeoutError, LinkClosedError
from tribune.profiles.schema import Profile
from tribune.sim import Power, start_simulator

LINE_PROFILE: dict[str, Any] = {
    "id": "test-line",
    "name": "line device for tests",
    "kind": "display",
    "vendor": "test",
    "protocol": "none: written for these tests",
    "codec": "line",
    "timing": {"gap": 0.0, "reply_timeout": 0.25, "retries": 1, "busy_retry_delay": 0.1},
    "errors": [{"match": "ERR", "type": "refused", "message": "refused"}],
    "capabilities": {
        "power": {
            "get": {"send": "PWR?", "reply": "PWR=(?P<value>[01])$"},
            "read": {"0": "off", "1": "on"},
            "values": {"on": "1", "off": "0"},
            "set": {"send": "PWR {value}", "reply": "OK$"},
        },
        "input": {"values": {"a": "1", "b": "2"}, "set": {"send": "SRC {value}", "reply": "OK$"}},
    },
    "actions": {"dial": {"send": "DIAL {number}", "reply": "OK$", "params": ["number"]}},
}

Handler = Callable[[str, asyncio.StreamWriter], Coroutine[Any, Any, None]]


async def serve_lines(handle_line: Handler) -> tuple[asyncio.Server, int]:
    """A TCP device that calls `handle_line(line, writer)` for every CR-terminated command."""

    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readuntil(b"\r"):
                # Answer concurrently, so a slow answer does not hold up the next command.
                task = asyncio.create_task(handle_line(line.decode().strip(), writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def line_profile() -> Profile:
    return Profile.model_validate(LINE_PROFILE)


async def test_late_reply_is_not_taken_for_the_next_answer() -> None:
    """A device that refuses slowly: its late `ERR` answers neither the retry nor the next one."""

    async def handle(line: str, writer: asyncio.StreamWriter) -> None:
        if line.startswith("SRC"):
            await asyncio.sleep(0.35)  # after our 0.25 s timeout
            writer.write(b"ERR\r")
        elif line.startswith("PWR "):
            writer.write(b"OK\r")

    server, port = await serve_lines(handle)
    rt = DeviceRuntime("d", line_profile(), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        with pytest.raises(DeviceTimeoutError):
            await rt.set("input", "a")
        await rt.set("power", "on")  # a leftover ERR would make this fail as refused
    finally:
        await rt.stop()
        server.close()


async def test_peer_that_accepts_and_drops_is_backed_off() -> None:
    connections = 0

    def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    profile = Profile.model_validate({**LINE_PROFILE, "poll": [{"get": "power", "every": 1.0}]})
    rt = DeviceRuntime("d", profile, f"tcp://127.0.0.1:{port}")
    await rt.start()
    try:
        await asyncio.sleep(2.0)
        assert connections <= 6, f"{connections} connections in 2 s: no backoff"
        assert rt.health.status is HealthStatus.OFFLINE
        assert "without answering" in (rt.health.last_error or "")
    finally:
        await rt.stop()
        server.close()


async def test_stop_fails_the_request_in_flight() -> None:
    async def silent(line: str, writer: asyncio.StreamWriter) -> None:
        return None

    server, port = await serve_lines(silent)
    profile = Profile.model_validate(
        {**LINE_PROFILE, "timing": {**LINE_PROFILE["timing"], "reply_timeout": 10}}
    )
    rt = DeviceRuntime("d", profile, f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        pending = asyncio.ensure_future(rt.get("power"))
        await asyncio.sleep(0.2)
        await rt.stop()
        with pytest.raises(LinkClosedError):
            await asyncio.wait_for(pending, 1)
    finally:
        server.close()


async def test_action_is_never_sent_twice() -> None:
    dials: list[str] = []

    async def handle(line: str, writer: asyncio.StreamWriter) -> None:
        if line.startswith("DIAL"):
            dials.append(line)  # and never answer: the call may still go through

    server, port = await serve_lines(handle)
    rt = DeviceRuntime("d", line_profile(), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        with pytest.raises(DeviceTimeoutError):
            await rt.action("dial", {"number": "1001"})
        await asyncio.sleep(0.3)
        assert dials == ["DIAL 1001"]
    finally:
        await rt.stop()
        server.close()


async def test_set_of_an_unpolled_capability_reads_back_and_polls_go_on(
    pjlink_profile: Profile, caplog: pytest.LogCaptureFixture
) -> None:
    """mute is readable but not in this poll plan: its read-back must not wedge the polls."""
    profile = fast(pjlink_profile).model_copy(
        update={"poll": [pjlink_profile.poll[0].model_copy(update={"every": 0.2})]}
    )
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=50) as sim:
        sim.sim.power.force(Power.ON)
        rt = DeviceRuntime("p", profile, f"tcp://127.0.0.1:{sim.port}")
        await rt.start()
        try:
            caplog.set_level(logging.WARNING, logger="tribune")
            await rt.set("mute", True)
            await asyncio.sleep(0.3)
            assert rt.state["mute"].value is True
            polled_at = rt.state["power"].at
            await asyncio.sleep(0.6)
            assert rt.state["power"].at > polled_at, "polls stopped after the read-back"
            assert await asyncio.wait_for(rt.get("video_mute"), 1) is False
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert rt.health.status is HealthStatus.ONLINE
        finally:
            await rt.stop()


async def test_offline_and_back_timings_with_shipped_profile(pjlink_profile: Profile) -> None:
    """The shipped PJLink timing (not shortened): offline at once on a refused reconnect and
    back within 5 s of the device's return."""
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=50) as sim:
        rt = DeviceRuntime("p", pjlink_profile, f"tcp://127.0.0.1:{sim.port}")
        await rt.start()
        try:
            for _ in range(100):
                if rt.health.status is HealthStatus.ONLINE:
                    break
                await asyncio.sleep(0.05)
            await sim.stop_tcp()
            started = time.monotonic()
            while rt.health.status is not HealthStatus.OFFLINE and time.monotonic() - started < 10:
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 2 * pjlink_profile.timing.reply_timeout
            await asyncio.sleep(6)  # long enough for the backoff to reach its cap
            await sim.start_tcp()
            back = time.monotonic()
            while rt.health.status is not HealthStatus.ONLINE and time.monotonic() - back < 15:
                await asyncio.sleep(0.01)
            assert time.monotonic() - back < 5.0
        finally:
            await rt.stop()


async def test_a_tap_does_not_wait_for_a_whole_route_poll() -> None:
    """A four-output route poll takes four exchanges; a user command goes in between them."""
    from tribune.profiles.loader import ProfileLoader

    base = ProfileLoader().load("extron-sis").profile
    profile = base.model_copy(
        update={
            "timing": base.timing.model_copy(update={"gap": 0.1, "reply_timeout": 0.5}),
            "poll": [e.model_copy(update={"every": 0.05}) for e in base.poll if e.get == "route"],
        }
    )
    async with start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=50) as sim:
        rt = DeviceRuntime("switcher", profile, f"tcp://127.0.0.1:{sim.port}")
        await rt.start()
        try:
            for _ in range(100):
                if "route" in rt.state:
                    break
                await asyncio.sleep(0.05)
            worst = 0.0
            for i in range(8):
                await asyncio.sleep(0.07 * (i % 3))  # land at different points of the poll
                started = time.monotonic()
                await rt.set("mute", i % 2 == 0)
                worst = max(worst, time.monotonic() - started)
            # At most one output read and one gap ahead of it, not four of each.
            assert worst < 0.3, f"a tap waited {worst:.3f} s"
        finally:
            await rt.stop()


async def test_queries_refused_in_standby_are_not_faults(caplog: pytest.LogCaptureFixture) -> None:
    """A SMART board answers only `powerstate` while off: no error, no flood of retries."""
    from tribune.profiles.loader import ProfileLoader

    base = ProfileLoader().load("smart-board").profile
    profile = base.model_copy(
        update={
            "timing": base.timing.model_copy(update={"gap": 0.0}),
            "poll": [e.model_copy(update={"every": 0.1}) for e in base.poll],
        }
    )
    async with start_simulator("smart-board", tcp=("127.0.0.1", 0), speed=50) as sim:
        rt = DeviceRuntime("board", profile, f"tcp://127.0.0.1:{sim.port}")
        await rt.start()
        try:
            await asyncio.sleep(1.0)
            assert rt.state["power"].value == "off"
            assert rt.health.status is HealthStatus.ONLINE
            assert rt.health.last_error is None
            asked = rt.stats.count
            await asyncio.sleep(1.0)
            # Only power is asked while off (every 0.1 s here); the rest waits a minute.
            assert rt.stats.count - asked <= 12
            await rt.set("power", "on")
            for _ in range(100):
                if "volume" in rt.state:
                    break
                await asyncio.sleep(0.05)
            assert "volume" in rt.state  # read as soon as the board is on
        finally:
            await rt.stop()


async def test_noise_without_a_terminator_does_not_spoil_the_retry() -> None:
    """A reply garbled on the line (its CR lost): the bytes wait for a terminator that never
    comes. Glued to the front of the retry's answer they made it unreadable too, and the device
    went offline though it answered; found by the soak (a SMART board after a garbled reply)."""
    answered = 0

    async def handle(line: str, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        answered += 1
        writer.write(b"\x93\x07garbled" if answered == 1 else b"PWR=1\r")

    server, port = await serve_lines(handle)
    rt = DeviceRuntime("d", line_profile(), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("power") == "on"
        assert answered == 2  # the retry's answer was read
        assert rt.health.status is HealthStatus.ONLINE
        assert rt.link.partial_drops == 1  # the noise, counted
    finally:
        await rt.stop()
        server.close()


async def test_a_reply_still_arriving_when_the_wait_ends_is_not_cut() -> None:
    """A slow line: the first reply trickles in past the timeout. Its start must not be thrown
    away while bytes are still coming (the rest would pass for a short frame of its own)."""
    answered = 0

    async def handle(line: str, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        answered += 1
        if answered == 1:
            for byte in b"PWR=1\r":
                writer.write(bytes([byte]))
                await asyncio.sleep(0.08)  # 0.48 s in all, past the 0.25 s timeout
        else:
            writer.write(b"PWR=1\r")

    server, port = await serve_lines(handle)
    rt = DeviceRuntime("d", line_profile(), f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("power") == "on"
        assert rt.link.partial_drops == 0
        assert rt.link.frame_errors == 0
    finally:
        await rt.stop()
        server.close()
