"""Smoke test of the room service benchmark: it runs and prints the report; no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "api_latency.py"
STATS = ("tap_to_wire_ms", "tap_to_wire_clear_line_ms", "reply_to_ws_ms")
IDLE = ("cpu_percent_of_one_core", "rss_mb", "seconds")


def test_quick_run_prints_the_report() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name in STATS:
        assert set(report[name]) >= {"p50", "p99", "max", "n"}, name
    assert report["tap_to_wire_ms"]["n"] == 20
    assert report["reply_to_ws_ms"]["n"] == 20
    assert isinstance(report["taps_behind_other_traffic"], int)
    idle = report["idle"]
    for name in IDLE:
        assert isinstance(idle[name], float), name
        assert isinstance(idle["service_only"][name], float), name
    assert idle["devices"] == 6
    assert set(report["budget"]) == {
        "tap_to_wire_p99_ms",
        "reply_to_ws_p99_ms",
        "idle_cpu_percent_of_one_core",
        "idle_rss_mb",
    }
    assert isinstance(report["within_budget"], bool)
    assert report["python"]
    assert report["machine"]["cpus"] >= 1
