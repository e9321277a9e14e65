"""The shipped units, unchanged, pass `systemd-analyze verify` (no warning at all), and say what
the service relies on (Type=notify, the watchdog, the user, the device policy, the hardening).

The units run /opt/tribune/venv/bin/tribune, which this machine does not have: they are verified
in a scratch root (`--root`) holding the system's own units, the shipped files as they are, and a
stub at each path a unit executes. A unit whose executable is missing is refused there too."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
SYSTEM_UNITS = ("tribune.service", "tribune-hub.service")
KIOSK = "tribune-kiosk.service"

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None and not os.environ.get("CI"),
    reason="systemd-analyze is not installed (apt-get install systemd)",
)


def unit_settings(name: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit, repeated keys kept, continuation lines joined."""
    settings: dict[str, list[str]] = {}
    text = (SYSTEMD / name).read_text(encoding="utf-8").replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key, []).append(value)
    return settings


def executables(name: str) -> list[str]:
    """The programs a unit runs (Exec*= lines, without their -@:+! prefixes)."""
    found = []
    for key, values in unit_settings(name).items():
        if key.startswith("Exec"):
            found += [value.split()[0].lstrip("-@:+!") for value in values]
    return found


def scratch_root(tmp_path: Path, *, stubs: bool = True) -> Path:
    root = tmp_path / "root"
    for folder in ("usr/lib/systemd/system", "lib/systemd/system"):
        source = Path("/") / folder
        if source.is_dir() and not (root / folder).exists():
            shutil.copytree(source, root / folder, symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for name in (*SYSTEM_UNITS, KIOSK):
        shutil.copyfile(SYSTEMD / name, units / name)
        if stubs:
            for program in executables(name):
                stub = root / program.lstrip("/")
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
                stub.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None, "systemd-analyze is missing (apt-get install systemd)"
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False, cwd="/"
    )


def test_every_unit_verifies_clean(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    done = analyze("verify", f"--root={root}", *SYSTEM_UNITS, KIOSK)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # an unknown key is only a warning: none at all
    assert done.stdout == "", done.stdout


def test_verify_does_look_at_the_executable(tmp_path: Path) -> None:
    root = scratch_root(tmp_path, stubs=False)
    done = analyze("verify", f"--root={root}", "tribune.service")
    assert done.returncode != 0
    assert "/opt/tribune/venv/bin/tribune is not executable" in done.stderr


def test_kiosk_verifies_as_a_user_unit(tmp_path: Path) -> None:
    missing = [p for p in executables(KIOSK) if not Path(p).exists()]
    if missing:
        pytest.skip(f"not on this machine: {', '.join(missing)}")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(
        [str(ANALYZE), "--user", "verify", str(SYSTEMD / KIOSK)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


@pytest.mark.parametrize("unit", SYSTEM_UNITS)
def test_hardening_exposure_is_low(unit: str, tmp_path: Path) -> None:
    done = analyze(
        "security", "--offline=true", "--threshold=25", f"--root={scratch_root(tmp_path)}", unit
    )
    assert done.returncode == 0, done.stdout[-600:]


def test_what_the_room_service_relies_on() -> None:
    unit = unit_settings("tribune.service")
    single = {key: values[-1] for key, values in unit.items()}
    assert single["Type"] == "notify"
    assert 20 <= int(single["WatchdogSec"]) <= 30
    assert single["Restart"] == "always"
    assert single["User"] == "tribune"
    assert single["SupplementaryGroups"].split() == ["dialout", "input", "plugdev"]
    assert single["ExecStart"] == (
        "/opt/tribune/venv/bin/tribune serve --config /etc/tribune/room.toml "
        "--data-dir /var/lib/tribune"
    )
    assert single["StateDirectory"] == "tribune"
    assert single["ConfigurationDirectory"] == "tribune"
    assert single["DevicePolicy"] == "closed"
    assert {"char-ttyUSB rw", "char-ttyACM rw", "char-input rw", "char-usb_device rw"} <= set(
        unit["DeviceAllow"]
    )
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert single[key] == "yes"
    assert single["ProtectSystem"] == "strict"
    # These would hide the adapters, or the groups that open them.
    assert "PrivateDevices" not in unit
    assert "PrivateUsers" not in unit


def test_the_hub_is_a_notify_service_too() -> None:
    unit = {key: values[-1] for key, values in unit_settings("tribune-hub.service").items()}
    assert unit["Type"] == "notify"
    assert unit["WatchdogSec"] == "30"
    assert unit["ExecStart"].startswith("/opt/tribune/venv/bin/tribune hub --config ")
