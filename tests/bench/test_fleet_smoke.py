"""Smoke test of the fleet benchmark: it runs and prints the report; no timing asserts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "fleet.py"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
STATS = {"p50", "p99", "max", "n"}
WINDOWS = {"startup", "idle", "samples", "burst"}


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "mosquitto is not installed (CI must install it: apt-get install mosquitto)"
            )
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); the bench needs it")


def test_quick_run_prints_the_report(tmp_path: Path) -> None:
    _require_mosquitto()
    written = tmp_path / "fleet.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json-out", str(written)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert json.loads(written.read_text()) == report
    assert report["rooms"] == 3
    assert report["room_ids"] == "centre-01/room-1 .. centre-01/room-3"
    assert report["state_min_interval_s"] == 0.2
    for name in ("rooms_started_s", "all_online_s", "all_with_state_s"):
        assert isinstance(report["startup"][name], float), name
    for name in ("change_to_hub_ms", "beyond_state_interval_ms", "change_to_broker_ms"):
        assert set(report[name]) == STATS, name
    assert report["change_to_hub_ms"]["n"] == 6  # every sample was seen in the hub
    assert report["samples_timed_out"] == 0
    assert set(report["api_requests"]) >= {"samples", "per_s", "room_ms", "list_ms"}
    burst = report["burst"]
    assert burst["rooms"] == 3
    assert burst["change_to_hub_ms"]["n"] == 3
    assert burst["timed_out"] == 0
    assert burst["source_mismatch"] == 0
    for process in ("hub", "broker", "room_processes_detail"):
        assert set(report[process]["cpu_percent_of_one_core"]) == WINDOWS, process
    for process in ("hub", "broker"):
        assert report[process]["peak_rss_mb"] > 0, process
    assert report["room_processes_detail"]["threads_total"] >= 1
    assert report["budget"] == {"rooms": 1000, "change_to_hub_p99_ms": 1000.0}
    assert isinstance(report["within_budget"], bool)
    assert report["budget_scale_reached"] is False
    assert isinstance(report["auth"]["token_created"], bool)
    assert report["python"]
    assert report["machine"]["cpus"] >= 1
