"""Shared machinery of the device simulators: device, power cycle, faults and sessions.

A `Simulator` is one device: its state, its timing and its injected faults. Every client
connection (a TCP connection, or the pty for as long as it is plugged in) gets a `Session`
that frames the byte stream, greets the client and applies the faults to each reply.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

log = logging.getLogger("tribune.sim")

StateT = TypeVar("StateT")


@dataclass(frozen=True)
class LineSettings:
    """Serial line settings a device expects (baud, data bits, parity, stop bits)."""

    baud: int
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    def __str__(self) -> str:
        return f"{self.baud} {self.bytesize}{self.parity}{self.stopbits}"


class Link(Protocol):
    """The byte pipe from a simulator to one client, as an endpoint provides it."""

    @property
    def name(self) -> str:
        """Where the client is, for logs."""
        ...

    def write(self, data: bytes) -> None:
        """Send bytes to the client."""
        ...

    def close(self) -> None:
        """Hang up: the client sees the connection (or the serial port) go away."""
        ...


class Power(enum.Enum):
    """Power state of a simulated display or projector."""

    OFF = "off"
    WARMING = "warming"
    ON = "on"
    COOLING = "cooling"


class PowerCycle:
    """Power state with a timed warm-up and cool-down."""

    def __init__(self, warm_up: float, cool_down: float) -> None:
        self.warm_up = warm_up
        self.cool_down = cool_down
        self._state = Power.OFF
        self._until = 0.0

    @property
    def state(self) -> Power:
        """The state now; a finished transition settles on read."""
        if self._state in (Power.WARMING, Power.COOLING) and time.monotonic() >= self._until:
            self._state = Power.ON if self._state is Power.WARMING else Power.OFF
        return self._state

    @property
    def remaining(self) -> float:
        """Seconds left in the current warm-up or cool-down (0 when settled)."""
        if self.state in (Power.WARMING, Power.COOLING):
            return max(0.0, self._until - time.monotonic())
        return 0.0

    @property
    def is_on(self) -> bool:
        """True when fully on (not warming)."""
        return self.state is Power.ON

    def turn_on(self) -> None:
        """Start warming up; the caller has checked that the device is off."""
        self._begin(Power.WARMING, self.warm_up)

    def turn_off(self) -> None:
        """Start cooling down; the caller has checked that the device is on."""
        self._begin(Power.COOLING, self.cool_down)

    def force(self, state: Power, *, seconds: float | None = None) -> None:
        """Put the device in `state` now (tests); transitions last `seconds` or their default."""
        if state is Power.WARMING:
            self._begin(state, self.warm_up if seconds is None else seconds)
        elif state is Power.COOLING:
            self._begin(state, self.cool_down if seconds is None else seconds)
        else:
            self._state = state

    def _begin(self, state: Power, seconds: float) -> None:
        self._state = state
        self._until = time.monotonic() + seconds
        if seconds <= 0:
            self._state = Power.ON if state is Power.WARMING else Power.OFF


@dataclass
class Faults:
    """Faults injected into every session of a simulator; tests and the CLI poke these."""

    drop: int = 0
    """Drop the next N replies (the command still takes effect)."""
    garbage: int = 0
    """Replace the next N replies with random bytes of the same length."""
    delay: float = 0.0
    """Seconds added before every reply (not scaled by speed)."""
    hang_up_after: int | None = None
    """Close the link when the Nth next command arrives (1 = the next one), without replying."""
    busy: bool = False
    """Answer every command with the device's busy reply until cleared."""

    def clear(self) -> None:
        """Remove every fault."""
        self.drop = self.garbage = 0
        self.delay = 0.0
        self.hang_up_after = None
        self.busy = False

    def take_hang_up(self) -> bool:
        """Count one command against `hang_up_after`; True when the link must close now."""
        if self.hang_up_after is None:
            return False
        self.hang_up_after -= 1
        if self.hang_up_after > 0:
            return False
        self.hang_up_after = None
        return True

    def take_drop(self) -> bool:
        """Consume one pending drop."""
        if self.drop > 0:
            self.drop -= 1
            return True
        return False

    def take_garbage(self) -> bool:
        """Consume one pending garbage reply."""
        if self.garbage > 0:
            self.garbage -= 1
            return True
        return False


class Simulator(ABC, Generic[StateT]):
    """One simulated device: state, timing, faults and the sessions talking to it."""

    id: ClassVar[str]
    title: ClassVar[str]
    document: ClassVar[str]
    tcp_port: ClassVar[int | None]
    serial: ClassVar[LineSettings]
    warm_up: ClassVar[float] = 0.0
    cool_down: ClassVar[float] = 0.0
    accepts_password: ClassVar[bool] = False

    def __init__(self, *, speed: float = 1.0, password: str | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        if password is not None and not self.accepts_password:
            raise ValueError(f"simulator {self.id!r} does not take a password")
        self.speed = speed
        self.password = password
        self.faults = Faults()
        self.power = PowerCycle(self.warm_up / speed, self.cool_down / speed)
        self.sessions: set[Session] = set()
        self.state: StateT = self.initial_state()

    @abstractmethod
    def initial_state(self) -> StateT:
        """The device state at power-up of the simulator."""

    @abstractmethod
    def open_session(self, link: Link, *, network: bool) -> Session:
        """A session for a new client: `network` is True on TCP, False on the serial pty."""

    def scaled(self, seconds: float) -> float:
        """A real-device duration, shortened by `speed`."""
        return seconds / self.speed

    async def start(self) -> None:
        """Run when the simulator starts serving."""

    async def stop(self) -> None:
        """Run when the simulator stops serving."""

    def broadcast(self, data: bytes) -> None:
        """Send an unsolicited message to every connected client."""
        for session in list(self.sessions):
            session.send(data)

    def hang_up(self) -> None:
        """Close every client link now."""
        for session in list(self.sessions):
            session.hang_up()


class Session(ABC):
    """One client connection: framing, greeting and per-connection protocol state."""

    def __init__(self, sim: Simulator[Any], link: Link) -> None:
        self.sim = sim
        self.link = link
        self._pending: deque[tuple[float, bytes | None]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def connection_made(self) -> None:
        """Greet the client: banner, prompt or nothing."""
        log.debug("%s session open (%s)", self.sim.id, self.link.name)

    @abstractmethod
    def data_received(self, data: bytes) -> None:
        """Bytes from the client, in chunks of any size."""

    @abstractmethod
    def answer(self, request: bytes) -> bytes | None:
        """The device's reply to one complete request (None: the device stays silent)."""

    def busy_answer(self, request: bytes) -> bytes | None:
        """The device's busy reply to `request`; silence unless the protocol has one."""
        return None

    def connection_lost(self) -> None:
        """The link is gone."""
        self._closed = True
        self.sim.sessions.discard(self)
        if self._writer is not None:
            self._writer.cancel()

    def dispatch(self, request: bytes) -> None:
        """Answer one complete request, with the injected faults applied."""
        sim_id = self.sim.id
        log.debug("%s <- %r (%s)", sim_id, request, self.link.name)
        faults = self.sim.faults
        if faults.take_hang_up():
            log.debug("%s fault: hanging up", sim_id)
            self.hang_up()
            return
        reply = self.busy_answer(request) if faults.busy else self.answer(request)
        if reply is None:
            return
        if faults.take_drop():
            log.debug("%s fault: dropping %r", sim_id, reply)
            return
        if faults.take_garbage():
            reply = garble(reply)
        self.send(reply)

    def send(self, data: bytes) -> None:
        """Write to the client after the injected delay, in order."""
        self._queue(data)

    def hang_up(self) -> None:
        """Close the link now; nothing more is read or written."""
        self._closed = True
        self.link.close()

    def close_after_send(self) -> None:
        """Hang up once everything queued has been written."""
        self._queue(None)

    def _queue(self, data: bytes | None) -> None:
        if self._closed:
            return
        delay = self.sim.faults.delay if data is not None else 0.0
        busy = self._writer is not None and not self._writer.done()
        if delay <= 0 and not busy:
            self._write_now(data)
            return
        self._pending.append((delay, data))
        if not busy:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            delay, data = self._pending.popleft()
            if delay > 0:
                await asyncio.sleep(delay)
            self._write_now(data)

    def _write_now(self, data: bytes | None) -> None:
        if self._closed:
            return
        if data is None:
            self.hang_up()
            return
        log.debug("%s -> %r (%s)", self.sim.id, data, self.link.name)
        self.link.write(data)


class LineSession(Session):
    """A session whose requests are lines ended by `terminator`; `ignored` bytes are dropped."""

    terminator: ClassVar[bytes] = b"\r"
    ignored: ClassVar[bytes] = b"\n"
    max_line: ClassVar[int] = 512

    def __init__(self, sim: Simulator[Any], link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        """Split into lines and dispatch each."""
        self._buffer += data
        while (end := self._buffer.find(self.terminator)) >= 0:
            line = self._buffer[:end]
            self._buffer = self._buffer[end + len(self.terminator) :]
            for byte in self.ignored:
                line = line.replace(bytes([byte]), b"")
            self.dispatch(line)
            if self._closed:
                return
        if len(self._buffer) > self.max_line:
            # Real devices overflow their line buffer silently; so do we.
            self._buffer = b""


def garble(reply: bytes) -> bytes:
    """Random bytes of the reply's length, keeping its last byte so framing still ends."""
    if len(reply) <= 1:
        return os.urandom(len(reply))
    return os.urandom(len(reply) - 1) + reply[-1:]


def sum8(data: bytes) -> int:
    """Low byte of the sum of `data` (NEC and Samsung MDC checksums)."""
    return sum(data) & 0xFF
