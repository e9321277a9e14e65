"""A real `tribune serve` process on simulated devices, with a real notification socket as
systemd's: READY=1 once the devices are opened and the API answers, a STATUS= a technician can
read, WATCHDOG=1 at a third of WatchdogSec, none while the process is frozen (SIGSTOP), and
STOPPING=1 on SIGTERM. The hub (`tribune hub`) says READY and STOPPING too."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.deploy.notify import NotifySocket, process_environ
from tribune.sim import RunningSimulator, start_simulator

ROOM = """
[room]
id = "baku/room-1"
name = "notify test"

[devices.projector]
profile = "pjlink"
port = "tcp://127.0.0.1:{projector}"

[devices.switcher]
profile = "extron-sis"
port = "tcp://127.0.0.1:{switcher}"

[devices.board]
profile = "smart-board"
port = "tcp://127.0.0.1:{nobody}"
"""

WATCHDOG = 0.9  # WatchdogSec: a ping every 0.3 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, RunningSimulator]]:
    async with (
        start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=10) as projector,
        start_simulator("extron-sis", tcp=("127.0.0.1", 0), speed=10) as switcher,
    ):
        yield {"projector": projector, "switcher": switcher}


async def test_serve_under_a_notify_socket(
    sims: dict[str, RunningSimulator], tmp_path: Path
) -> None:
    config = tmp_path / "room.toml"
    config.write_text(
        ROOM.format(
            projector=sims["projector"].port, switcher=sims["switcher"].port, nobody=free_port()
        ),
        encoding="utf-8",
    )
    port = free_port()
    notify = NotifySocket()  # abstract, like systemd's own /run/systemd/notify is not
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tribune", "serve", "--config", str(config),
        "--data-dir", str(tmp_path / "data"), "--port", str(port),
        env=process_environ(notify, WATCHDOG),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ready = await asyncio.to_thread(notify.wait_for, "READY", 30)
        # READY comes after the API is up: it answers at once.
        assert await asyncio.to_thread(answers, f"http://127.0.0.1:{port}/api/v1/health")
        assert ready.fields["STATUS"].startswith("serving room baku/room-1: ")
        assert notify.statuses()[0] == "starting room baku/room-1"
        status = await asyncio.to_thread(notify.wait_status, "2/3 devices online", 20)
        assert status == "serving room baku/room-1: 2/3 devices online (offline: board)"

        start = time.monotonic()
        await asyncio.sleep(2.1)
        pings = notify.with_key("WATCHDOG", since=start)
        assert 5 <= len(pings) <= 9, pings  # every 0.3 s
        assert all(b.at - a.at < 0.6 for a, b in itertools.pairwise(pings))

        # Frozen: no pings at all (systemd would kill it after WatchdogSec); thawed: pings again.
        os.kill(proc.pid, signal.SIGSTOP)
        frozen = time.monotonic() + 0.05
        await asyncio.sleep(1.5)
        thawed = time.monotonic()
        os.kill(proc.pid, signal.SIGCONT)
        assert [m for m in notify.received() if frozen <= m.at <= thawed] == []
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", 2, thawed)

        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        stopping = await asyncio.to_thread(notify.wait_for, "STOPPING", 2)
        assert not [m for m in notify.with_key("WATCHDOG") if m.at > stopping.at + 0.05]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        notify.close()


async def test_hub_under_a_notify_socket(tmp_path: Path) -> None:
    port = free_port()
    notify = NotifySocket(tmp_path)  # a path this time
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tribune", "hub", "--broker", f"mqtt://127.0.0.1:{free_port()}",
        "--port", str(port), "--data-dir", str(tmp_path / "hub"),
        env=process_environ(notify, WATCHDOG),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ready = await asyncio.to_thread(notify.wait_for, "READY", 30)
        assert ready.fields["STATUS"] == f"serving the hub on port {port}: broker not linked"
        assert await asyncio.to_thread(answers, f"http://127.0.0.1:{port}/")
        await asyncio.to_thread(notify.wait_for, "WATCHDOG", 2, ready.at)
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await asyncio.to_thread(notify.wait_for, "STOPPING", 2)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        notify.close()
