"""`tribune sim`: a real subprocess serving a pty and TCP, stopped by a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.sim.sim_clients import PtyClient, TcpClient

ROOT = Path(__file__).resolve().parents[2]


async def spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tribune",
        "sim",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )


async def test_pty_path_on_stdout_and_clean_sigterm() -> None:
    process = await spawn("pjlink", "--pty", "--tcp", "127.0.0.1:0", "--speed", "10")
    assert process.stdout is not None
    assert process.stderr is not None
    path = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
    assert path.startswith("/dev/pts/")
    port = PtyClient(path)  # setting raw mode flushes the greeting sent at plug-in
    await port.send(b"%1POWR ?\r")
    assert await port.read_until(b"\r") == b"%1POWR=0\r"
    port.close()
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_tcp_with_password_and_fault_flags() -> None:
    process = await spawn(
        "pjlink", "--tcp", "127.0.0.1:0", "--password", "secret", "--class", "2", "--busy"
    )
    assert process.stderr is not None
    line = b""
    while b"listening on" not in line:
        line = await asyncio.wait_for(process.stderr.readline(), 10)
    port = int(line.decode().rsplit(":", 1)[1])
    client = await TcpClient.connect(port)
    greeting = await client.read_until(b"\r")
    assert greeting.startswith(b"PJLINK 1 ")
    await client.send(b"0" * 32 + b"%2CLSS ?\r")
    assert await client.read_until(b"\r") == b"PJLINK ERRA\r"
    await client.close()
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_usage_errors_exit_2() -> None:
    process = await spawn("pjlink")
    assert await asyncio.wait_for(process.wait(), 10) == 2
    process = await spawn("nec-projector", "--tcp", "127.0.0.1:0", "--class", "2")
    assert await asyncio.wait_for(process.wait(), 10) == 2
