"""`tribune hub` as a process: serves the API against a real broker, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.sync.conftest import Broker, free_port
from tribune.cli import main


def test_tribune_hub_serves_rooms_and_stops_cleanly(broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "tribune", "hub", "--broker", broker.url]
    command += ["--port", str(port), "--data-dir", str(tmp_path / "hub")]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/rooms", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the hub did not start serving"
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json() == {"rooms": []}
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert (tmp_path / "hub" / "hub.db").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_bad_broker_url_is_refused() -> None:
    assert main(["hub", "--broker", "http://example.az", "--data-dir", "/nonexistent"]) == 2
