"""`kill -9` of the service while it converges: after a restart it converges to the same desired
state by itself, and the audit log holds every acknowledged intent. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tribune.sim import Power, RunningSimulator, start_simulator

ROOM = """
[room]
id = "baku/room-1"
name = "crash test"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{projector}"

[devices.switcher]
profile = "extron-sis"
port = "tcp://127.0.0.1:{switcher}"

[sources.laptop]
label = {{ az = "Noutbuk", en = "Laptop", ru = "Ноутбук" }}
desired = {{ switcher = {{ route = {{ "1" = "2" }} }} }}

[scenes.class-start]
label = {{ az = "Dərsə başla", en = "Start class", ru = "Начать занятие" }}
source = "laptop"
desired = {{ projector = {{ power = "on" }} }}
"""


def power(devices: dict[str, RunningSimulator]) -> Power:
    """The simulated projector's own power state."""
    state: Power = devices["projector"].sim.power.state
    return state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def http(method: str, url: str) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    return await asyncio.to_thread(call)


class Service:
    """`tribune serve` as a child process."""

    def __init__(self, config: Path, data: Path, port: int) -> None:
        self.args = [
            sys.executable, "-m", "tribune", "serve",
            "--config", str(config), "--data-dir", str(data), "--port", str(port),
        ]  # fmt: skip
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        for _ in range(200):
            try:
                status, _ = await http("GET", f"{self.base}/health")
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the service did not come up")

    async def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)


@pytest.fixture
async def devices() -> AsyncIterator[dict[str, RunningSimulator]]:
    async with (
        start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=10) as projector,
        start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=10) as switcher,
    ):
        yield {"projector": projector, "switcher": switcher}


async def test_kill_9_while_converging_then_restart(
    devices: dict[str, RunningSimulator], tmp_path: Path
) -> None:
    config = tmp_path / "room.toml"
    config.write_text(
        ROOM.format(projector=devices["projector"].port, switcher=devices["switcher"].port),
        encoding="utf-8",
    )
    service = Service(config, tmp_path / "data", free_port())
    await service.start()
    try:
        status, body = await http("POST", f"{service.base}/scenes/class-start/activate")
        assert status in (200, 202), body
        await asyncio.sleep(0.3)  # the projector is warming: 30 s at speed 10
        assert power(devices) is Power.WARMING
        await service.kill9()
        devices["projector"].sim.power.force(Power.OFF)  # and the projector lost power too
        await service.start()
        converged = False
        for _ in range(150):  # warm-up 3 s + polls
            _, room = await http("GET", f"{service.base}/room")
            if room["converged"]:
                converged = True
                break
            await asyncio.sleep(0.1)
        assert converged, room
        assert room["devices"]["projector"]["desired"]["power"] == "on"
        assert room["devices"]["switcher"]["desired"]["route"]["1"] == "2"
        assert power(devices) is Power.ON
        _, audit = await http("GET", f"{service.base}/audit")
        entries = audit["entries"] if isinstance(audit, dict) else audit
        assert any(e["action"] == "scene.activate" for e in entries), entries
    finally:
        await service.stop()


async def test_a_second_service_fails_before_touching_a_device(
    devices: dict[str, RunningSimulator], tmp_path: Path
) -> None:
    config = tmp_path / "room.toml"
    config.write_text(
        ROOM.format(projector=devices["projector"].port, switcher=devices["switcher"].port),
        encoding="utf-8",
    )
    port = free_port()
    first = Service(config, tmp_path / "data", port)
    await first.start()
    try:
        second = await asyncio.create_subprocess_exec(
            *Service(config, tmp_path / "data2", port).args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(second.communicate(), 20)
        assert second.returncode == 2
        assert b"is another tribune running?" in err
        assert not (tmp_path / "data2" / "tribune.db").exists()
    finally:
        await first.stop()
