"""The projector on the host: tribune's simulator on a loopback TCP port, in its own thread.

QEMU's usb-serial chardev connects to it, so what tribune writes to /dev/ttyUSB0 in the guest
arrives here through the guest's real ftdi_sio driver and QEMU's FTDI emulation. Every byte
received is recorded (with the time), so a test can ask whether the power-on frame came.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from tribune.sim.base import Link, Power, Session
from tribune.sim.runner import RunningSimulator, launch_simulator

T = TypeVar("T")

SIMULATOR = "nec-projector"
# NEC 015. POWER ON and 016. POWER OFF, checksum included (firmware-profiles/projector/nec).
POWER_ON = bytes.fromhex("020000000002")
POWER_OFF = bytes.fromhex("020100000003")


class HostSimulator:
    """A running simulator with a byte log; start() / stop() from the test's thread."""

    def __init__(self, sim_id: str = SIMULATOR, *, speed: float = 10.0) -> None:
        self.sim_id = sim_id
        self.speed = speed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningSimulator | None = None
        self._received: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self.connections = 0

    def start(self) -> None:
        """Listen on a free loopback port."""
        self._thread.start()
        self._running = self._call(self._start())

    async def _start(self) -> RunningSimulator:
        running = await launch_simulator(self.sim_id, tcp=("127.0.0.1", 0), speed=self.speed)
        sim = running.sim
        opened = sim.open_session

        def open_session(link: Link, *, network: bool) -> Session:
            session = opened(link, network=network)
            received = session.data_received

            def recorded(data: bytes) -> None:
                with self._lock:
                    self._received.append((time.monotonic(), bytes(data)))
                received(data)

            session.data_received = recorded  # type: ignore[method-assign]
            self.connections += 1
            return session

        sim.open_session = open_session  # type: ignore[method-assign]
        return running

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(30)

    def in_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the simulator's thread (the device state is not thread-safe)."""

        async def call() -> T:
            return fn()

        result: T = self._call(call())
        return result

    @property
    def port(self) -> int:
        """The TCP port QEMU's chardev connects to."""
        assert self._running is not None
        return self._running.port

    def received(self, since: float = 0.0) -> bytes:
        """Every byte received since `since` (time.monotonic())."""
        with self._lock:
            return b"".join(data for at, data in self._received if at >= since)

    def saw(self, frame: bytes, since: float = 0.0) -> bool:
        """True when `frame` arrived (whole) since `since`."""
        return frame in self.received(since)

    def wait_for(self, frame: bytes, *, since: float, timeout: float) -> float | None:
        """Seconds until `frame` arrived after `since`, or None at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                joined = b""
                for at, data in self._received:
                    if at < since:
                        continue
                    joined += data
                    if frame in joined:
                        return at - since
            time.sleep(0.2)
        return None

    def power(self) -> Power:
        """The projector's power state."""
        assert self._running is not None
        sim = self._running.sim
        return self.in_loop(lambda: sim.power.state)

    def switch_off(self) -> None:
        """Standby at once, as after a mains cut in the room (no cooling)."""
        assert self._running is not None
        sim = self._running.sim
        self.in_loop(lambda: sim.power.force(Power.OFF))

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._running is not None:
            self._call(self._running.aclose())
            self._running = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()
