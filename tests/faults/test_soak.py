"""A short soak under dense faults (`bench/soak.py`): nothing lost, nothing run twice, the room
back where it was asked to be, no unhandled exception, no leaked descriptor or task.

One minute of faults (one every 0.8 s on average, every kind dealt from a shuffled deck) and
intents from the panel, an api token and the hub, on the eleven simulated devices, a real
Mosquitto, `tribune serve` as a child process and a hub; then a settle. About 80 s in all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
KINDS = {
    "unplug",
    "network_drop",
    "garbage",
    "slow",
    "drop",
    "busy",
    "broker_restart",
    "kill9",
}


def _require_mosquitto() -> None:
    if MOSQUITTO is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                "mosquitto is not installed (CI must install it: apt-get install mosquitto)"
            )
        pytest.skip("mosquitto is not installed (apt-get install mosquitto); the soak needs it")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One short soak, shared by the tests below."""
    _require_mosquitto()
    folder = tmp_path_factory.mktemp("soak")
    written = folder / "soak.json"
    done = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--minutes", "1", "--seed", "7",
            "--fault-interval", "0.8", "--checkpoint-minutes", "0", "--settle-timeout", "50",
            "--kill-until", "0.7",
            "--json-out", str(written), "--logs", str(folder / "logs"),
        ],
        capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    assert json.loads(written.read_text()) == result
    return result


@pytest.mark.timeout(200)
def test_every_kind_of_fault_was_injected(report: dict[str, Any]) -> None:
    by_kind = report["faults"]["by_kind"]
    assert set(by_kind) == KINDS, by_kind
    assert report["faults"]["total"] >= 40
    assert report["fault_errors"] == []
    assert report["service_lives"] >= 2, "kill -9 restarted the service"
    assert report["intents_acknowledged"] >= 15
    assert {key.split(":")[0] for key in report["intents_by"]} == {"panel", "api", "hub"}


@pytest.mark.timeout(200)
def test_nothing_lost_nothing_twice(report: dict[str, Any]) -> None:
    assert report["intents_missing_from_audit"] == 0, report["intents_missing_detail"]
    assert report["intents_refused"] == []
    assert report["hub_caught_up"] is True
    assert report["events"] > 0
    assert report["events_lost"] == 0, report["events_missing_seqs"]
    assert report["events_duplicated"] == 0
    assert report["seq_conflicts"] == 0
    assert report["events_pending"] == 0
    assert report["audit_missing_in_hub"] == 0, report["audit_missing_in_hub_ids"]


@pytest.mark.timeout(200)
def test_the_room_converged_to_the_last_intent(report: dict[str, Any]) -> None:
    assert report["converged"] is True, report["convergence"]


@pytest.mark.timeout(200)
def test_no_unhandled_exception_and_no_leak(report: dict[str, Any]) -> None:
    assert report["unhandled_errors"] == 0, report["unhandled_samples"]
    assert report["harness_errors"]["unhandled"] == 0, report["harness_errors"]
    assert report["service_exit_code"] == 0
    assert report["fd_leak"] == 0
    assert report["task_leak"] == 0
