"""sd_notify by hand: datagrams on a real AF_UNIX socket (abstract and path), the watchdog's rate,
pings withheld while unhealthy, and nothing ever raised into the service."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.notify import NotifySocket
from tribune.systemd import Health, Notifier, ServiceWatch, notify_address, watchdog_interval


@pytest.fixture(params=["abstract", "path"])
def notify(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(None if request.param == "abstract" else tmp_path)
    yield sock
    sock.close()


def test_address_forms() -> None:
    assert notify_address("@sd-notify") == "\0sd-notify"
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("") is None
    assert notify_address("vsock:2:1234") is None


def test_one_datagram_per_message(notify: NotifySocket) -> None:
    notifier = Notifier(notify.environ())
    assert notifier.enabled
    assert notifier.ready("serving room baku/room-1: 1/1 devices online")
    assert notifier.status("second line")
    assert notifier.watchdog()
    assert notifier.stopping()
    assert not notifier.stopping()  # once
    notify.wait_for("STOPPING")
    got = [m.fields for m in notify.received()]
    assert got == [
        {"READY": "1", "STATUS": "serving room baku/room-1: 1/1 devices online"},
        {"STATUS": "second line"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopping"},
    ]
    notifier.close()


def test_no_socket_sends_nothing() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()


def test_a_missing_socket_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    for _ in range(3):
        assert not notifier.watchdog()
    assert not Notifier({"NOTIFY_SOCKET": "@tribune-nobody-listens"}).ready("x")
    warnings = [r for r in caplog.records if "cannot notify" in r.getMessage()]
    assert len(warnings) == 2  # once per notifier, not once per datagram


def test_watchdog_interval_from_the_environment() -> None:
    me = os.getpid()
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(me)}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(me + 1)}) == 0.0
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) == 0.0
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) == 0.0
    assert watchdog_interval({}) == 0.0


class Switchable:
    """A health whose problem a test sets."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self.ready = False
        self.status = "serving room baku/room-1: 2/2 devices online"

    def health(self) -> Health:
        return Health(
            ready=lambda: self.ready, problem=lambda: self.problem, status=lambda: self.status
        )


async def test_ready_status_and_pings_at_a_third_of_the_interval(notify: NotifySocket) -> None:
    state = Switchable()
    watch = ServiceWatch(Notifier(notify.environ()), state.health(), watchdog=0.6, tick=0.05)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.sleep(0.3)
        assert notify.with_key("READY") == []  # not before the service says it is up
        state.ready = True
        ready = await asyncio.to_thread(notify.wait_for, "READY", 2)
        assert ready.fields["STATUS"] == "serving room baku/room-1: 2/2 devices online"
        state.status = "serving room baku/room-1: 1/2 devices online (offline: board)"
        await asyncio.to_thread(notify.wait_status, "offline: board", 2)
        start = time.monotonic()
        await asyncio.sleep(2.0)
        pings = notify.with_key("WATCHDOG", since=start)
        assert 8 <= len(pings) <= 12  # every 0.2 s
        gaps = [b.at - a.at for a, b in itertools.pairwise(pings)]
        assert all(0.1 < gap < 0.35 for gap in gaps), gaps
        assert len(notify.statuses()) == 2  # sent on change only
    finally:
        task.cancel()


async def test_pings_stop_while_unhealthy_and_resume(notify: NotifySocket) -> None:
    state = Switchable()
    state.ready = True
    watch = ServiceWatch(Notifier(notify.environ()), state.health(), watchdog=0.6, tick=0.05)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", 2)
        state.problem = "device projector: its runtime task has ended"
        status = await asyncio.to_thread(notify.wait_status, "pings stopped", 2)
        assert status == (
            "unhealthy, watchdog pings stopped: device projector: its runtime task has ended"
        )
        quiet = time.monotonic() + 0.1  # a ping may have been on its way
        await asyncio.sleep(1.0)
        assert notify.with_key("WATCHDOG", since=quiet) == []
        state.problem = None
        back = time.monotonic()
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", 2, back)
        assert notify.statuses()[-1] == "serving room baku/room-1: 2/2 devices online"
    finally:
        task.cancel()


async def test_a_failing_check_withholds_pings_and_says_why(notify: NotifySocket) -> None:
    def broken() -> str | None:
        raise RuntimeError("bug")

    health = Health(ready=lambda: True, problem=broken, status=lambda: "fine")
    watch = ServiceWatch(Notifier(notify.environ()), health, watchdog=0.3, tick=0.05)
    task = asyncio.create_task(watch.run())
    try:
        status = await asyncio.to_thread(notify.wait_status, "health check failed", 2)
        assert "RuntimeError('bug')" in status
        await asyncio.sleep(0.5)
        assert notify.with_key("WATCHDOG") == []
    finally:
        task.cancel()


async def test_ready_after_the_wait_even_if_a_device_never_settles(notify: NotifySocket) -> None:
    health = Health(ready=lambda: False, problem=lambda: None, status=lambda: "starting")
    watch = ServiceWatch(Notifier(notify.environ()), health, watchdog=0, tick=0.05, ready_wait=0.3)
    task = asyncio.create_task(watch.run())
    try:
        await asyncio.to_thread(notify.wait_for, "READY", 2)
        assert notify.with_key("WATCHDOG") == []  # no WatchdogSec, no pings
    finally:
        task.cancel()
