"""Smoke test of the link latency benchmark: it runs and prints the report; no timing asserts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "link_latency.py"
STATS = (
    "first_byte_ms",
    "pjlink_roundtrip_ms",
    "pjlink_roundtrip_auth_ms",
    "raw_socket_ms",
    "pypjlink_ms",
)


def test_quick_run_prints_the_report() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for name in STATS:
        assert set(report[name]) >= {"p50", "p99", "max", "n"}, name
        assert report[name]["n"] == 50
    for name in ("overhead_vs_raw_p50_ms", "ratio_to_pypjlink_p50"):
        assert isinstance(report[name], float)
    assert set(report["budget"]) == {"first_byte_p99_ms", "overhead_vs_raw_p50_ms"}
    assert isinstance(report["within_budget"], bool)
    assert report["python"]
    assert report["machine"]["cpus"] >= 1
