"""`tribune demo` as the README promises: serves the room, a scene converges, Host is checked."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tests.room.test_crash_restart import free_port


async def call(method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    def run() -> tuple[int, Any]:
        data = b"" if method == "POST" else None
        request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None

    return await asyncio.to_thread(run)


async def test_demo_serves_converges_and_refuses_foreign_hosts() -> None:
    port = free_port()
    speed = 20.0  # Epson warm-up 30 s -> 1.5 s
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tribune", "demo", "--port", str(port), "--speed", str(speed),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        room: Any = None
        for _ in range(300):
            try:
                status, room = await call("GET", f"{base}/room")
                if status == 200 and all(d["online"] for d in room["devices"].values()):
                    break
            except OSError:
                pass
            await asyncio.sleep(0.05)
        assert room is not None
        assert len(room["devices"]) == 6
        assert all(d["online"] for d in room["devices"].values()), room
        status, _ = await call("POST", f"{base}/scenes/class-start/activate")
        assert status in (200, 202)
        started = time.monotonic()
        while not (await call("GET", f"{base}/room"))[1]["converged"]:
            assert time.monotonic() - started < 30 / speed + 5, "not converged in warm-up + 5 s"
            await asyncio.sleep(0.1)
        status, _ = await call("POST", f"{base}/scenes/class-end/activate")
        started = time.monotonic()
        while True:
            room = (await call("GET", f"{base}/room"))[1]
            powers = [
                d["reported"]["power"]["value"]
                for d in room["devices"].values()
                if "power" in d["reported"]
            ]
            if room["converged"] and all(p == "off" for p in powers):
                break
            assert time.monotonic() - started < 15, room
            await asyncio.sleep(0.1)
        status, _ = await call("GET", f"{base}/room", headers={"Host": "evil.example"})
        assert status == 421
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0
