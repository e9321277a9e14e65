"""What the soak (`bench/soak.py`) found, each pinned down on its own.

1. A power set the device refuses (a Samsung display's NAK while it is busy) left the runtime
   showing the "cooling" it records before sending "off", as if the set had been accepted. The
   read-back that should correct it was refused too, and a device shown cooling counts as
   resting, whose refused polls are asked again only after a minute: for that minute the room
   waited for a cool-down that never began, and did not send "off" again.
2. A value the device refused was never sent again until a new intent or the device's return
   from offline. A refusal is often the moment's (a display busy, a projector mid-transition):
   once the fault was gone the room stayed where it was, a class-end tap leaving a display on
   for the night. A failed value is now tried again every `FAILED_RETRY_SECONDS`, quietly: the
   failure is logged and audited once.
3. aiomqtt registers its writer for a socket paho has bytes for with
   `loop.call_soon_threadsafe(loop.add_writer, fd, ...)`, which runs later. When the link broke
   in between (a broker restart while publishing), the socket was closed by then: the hub logged
   "Exception in callback ... add_writer: Bad file descriptor", and had another socket taken the
   same number meanwhile — a device's TCP link, a pty — the MQTT writer went on it instead,
   replacing that socket's own writer and polling it for ever.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest

from tests.sync.conftest import Broker
from tribune import reconcile
from tribune.drivers.capabilities import Value
from tribune.drivers.runtime import DeviceRuntime, HealthStatus, Source
from tribune.errors import DeviceError
from tribune.profiles.loader import ProfileLoader
from tribune.sim import Power, start_simulator
from tribune.sync.sockets import guard_sockets

SPEED = 10.0


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_refused_power_set_does_not_leave_the_hoped_for_cooling_shown(
    profiles: ProfileLoader,
) -> None:
    profile = profiles.load("samsung-mdc").profile
    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        sim.sim.power.force(Power.ON)
        runtime = DeviceRuntime(
            "monitor", profile, f"tcp://127.0.0.1:{sim.port}", options={"id": "01"}
        )
        await runtime.start()
        try:
            await _until(lambda: runtime.state.get("power") is not None)
            assert runtime.state["power"].value == "on"

            sim.faults.busy = True  # MDC has no busy code: a busy display NAKs everything
            try:
                await runtime.set("power", "off")
            except DeviceError:
                pass
            else:
                raise AssertionError("the busy display accepted power off")
            # Still on, as the device said: not the cooling the set hoped for.
            shown = runtime.state["power"]
            assert shown.value == "on", shown
            assert shown.source is not Source.SET

            sim.faults.busy = False
            await asyncio.sleep(1.0)  # the read-back, refused or not, changes nothing
            assert runtime.state["power"].value == "on"
            assert sim.sim.power.state is Power.ON
        finally:
            await runtime.stop()


async def test_a_refused_value_is_tried_again_once_the_device_takes_it_and_audited_once(
    profiles: ProfileLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "FAILED_RETRY_SECONDS", 0.5, raising=False)
    profile = profiles.load("samsung-mdc").profile
    failures: list[tuple[str, Value, str]] = []

    async def audit(device: str, capability: str, value: Value, error: str) -> None:
        failures.append((capability, value, error))

    async with start_simulator("samsung-mdc", tcp=("127.0.0.1", 0), speed=SPEED) as sim:
        sim.sim.power.force(Power.ON)
        runtime = DeviceRuntime(
            "monitor", profile, f"tcp://127.0.0.1:{sim.port}", options={"id": "01"}
        )
        desired: dict[str, Value] = {"power": "on"}
        reconciler = reconcile.DeviceReconciler(runtime, lambda: desired, on_failure=audit)
        await runtime.start()
        await reconciler.start()
        try:
            await _until(lambda: reconciler.converged)
            sim.faults.busy = True
            desired["power"] = "off"  # class end, while the display is busy
            reconciler.wake()
            await _until(lambda: reconciler.status["power"].state == "failed")
            await asyncio.sleep(2.0)  # tried again a few times meanwhile, still refused
            assert reconciler.status["power"].state == "failed"
            assert runtime.health.status is HealthStatus.ONLINE  # it answers all along

            sim.faults.busy = False  # no new intent, no outage: only the retry can help
            await _until(lambda: sim.sim.power.state is not Power.ON, timeout=5.0)
            await _until(lambda: reconciler.converged, timeout=10.0)
            assert len(failures) == 1, failures  # one failure, said once
            assert failures[0][:2] == ("power", "off")
        finally:
            await reconciler.stop()
            await runtime.stop()


@pytest.mark.parametrize("reused", [True, False], ids=["fd-reused", "fd-closed"])
async def test_a_write_registered_as_the_link_breaks_lands_on_no_other_socket(
    broker: Broker, reused: bool
) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    client = aiomqtt.Client("127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5)
    guard_sockets(client)
    async with client:
        paho = client._client
        paho.publish("tribune/v1/baku/room-1/events", b"{}", qos=1)  # a writer, deferred
        paho._sock_close()  # the broker went away before the loop ran it
        other = socket.socket() if reused else None  # takes the freed descriptor number
        try:
            await asyncio.sleep(0.2)
            landed = other is not None and loop.remove_writer(other.fileno())
        finally:
            if other is not None:
                other.close()
    assert not landed, "the MQTT writer was registered on another socket"
    assert errors == []
