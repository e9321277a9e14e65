"""Start a simulator with its endpoints, in-process: `start_simulator(...)`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tribune.sim.base import Faults, LineSettings, Simulator
from tribune.sim.endpoints import PtyEndpoint, TcpEndpoint
from tribune.sim.registry import SIMULATORS


class RunningSimulator:
    """A serving simulator: the device (`sim`) and its TCP and/or pty endpoints."""

    def __init__(
        self, sim: Simulator[Any], tcp: TcpEndpoint | None, pty: PtyEndpoint | None
    ) -> None:
        self.sim = sim
        self.tcp = tcp
        self.pty = pty

    @property
    def state(self) -> Any:
        """The device state (a protocol-specific dataclass; tests may poke it)."""
        return self.sim.state

    @property
    def faults(self) -> Faults:
        """The faults injected into every session."""
        return self.sim.faults

    @property
    def host(self) -> str:
        """The TCP host."""
        return self._tcp().host

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._tcp().port

    @property
    def path(self) -> str:
        """The current pty slave path."""
        pty = self._pty()
        if pty.path is None:
            raise RuntimeError("the pty is not plugged in")
        return pty.path

    @property
    def link(self) -> str | None:
        """The symlink kept pointing at the pty, if any."""
        return self._pty().link

    def unplug(self) -> None:
        """Remove the pty, as pulling a USB-serial adapter."""
        self._pty().unplug()

    def replug(self) -> str:
        """Plug a new pty in (new path, symlink repointed); returns the path."""
        return self._pty().replug()

    async def stop_tcp(self) -> None:
        """Stop listening and drop every TCP client."""
        await self._tcp().stop()

    async def start_tcp(self) -> None:
        """Listen again on the same port."""
        await self._tcp().start()

    async def restart_tcp(self) -> None:
        """Stop and start the TCP endpoint on the same port."""
        await self._tcp().restart()

    async def aclose(self) -> None:
        """Stop every endpoint and the device."""
        if self.pty is not None:
            self.pty.unplug()
        if self.tcp is not None:
            await self.tcp.stop()
        await self.sim.stop()

    def _tcp(self) -> TcpEndpoint:
        if self.tcp is None:
            raise RuntimeError(f"{self.sim.id} was started without a TCP endpoint")
        return self.tcp

    def _pty(self) -> PtyEndpoint:
        if self.pty is None:
            raise RuntimeError(f"{self.sim.id} was started without a pty endpoint")
        return self.pty


async def launch_simulator(
    sim_id: str,
    *,
    tcp: tuple[str, int] | None = None,
    pty: bool = False,
    link: str | None = None,
    baud: int | None = None,
    check_line: bool | None = None,
    auto_replug: float | None = None,
    speed: float = 1.0,
    **options: Any,
) -> RunningSimulator:
    """Create simulator `sim_id` and start its endpoints; the caller must `aclose()` it.

    `tcp=(host, port)` listens (port 0 picks a free one); `pty=True` (or a `link`) opens a
    pty. `baud` sets the expected line speed and turns on the line check (ignore bytes when
    the client's tty settings differ); `check_line=True` turns it on at the default speed.
    Other keyword options go to the simulator (`password`, `class_`, ...).
    """
    try:
        factory = SIMULATORS[sim_id]
    except KeyError:
        known = ", ".join(sorted(SIMULATORS))
        raise ValueError(f"unknown simulator {sim_id!r} (known: {known})") from None
    if tcp is None and not pty and link is None:
        raise ValueError("give tcp=(host, port) and/or pty=True")
    sim = factory(speed=speed, **options)
    expected: LineSettings | None = None
    if baud is not None or check_line:
        expected = sim.serial if baud is None else dataclasses.replace(sim.serial, baud=baud)
    tcp_endpoint = TcpEndpoint(sim, *tcp) if tcp is not None else None
    pty_endpoint = None
    if pty or link is not None:
        pty_endpoint = PtyEndpoint(sim, link=link, line=expected, auto_replug=auto_replug)
    running = RunningSimulator(sim, tcp_endpoint, pty_endpoint)
    try:
        await sim.start()
        if tcp_endpoint is not None:
            await tcp_endpoint.start()
        if pty_endpoint is not None:
            pty_endpoint.plug()
    except BaseException:
        await running.aclose()
        raise
    return running


@asynccontextmanager
async def start_simulator(sim_id: str, **kwargs: Any) -> AsyncIterator[RunningSimulator]:
    """Run simulator `sim_id` for the `async with` block; arguments as `launch_simulator`."""
    running = await launch_simulator(sim_id, **kwargs)
    try:
        yield running
    finally:
        await running.aclose()
