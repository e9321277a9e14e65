"""deploy/install.sh, run by /bin/sh into a scratch root (`--root`) from real wheels built from
this repository: the tree it makes, a reinstall, an upgrade that keeps config and data, rollback
and roll forward, a config the new release refuses, old releases pruned; and its usage errors.

The dependency wheels are built once per pyproject.toml and kept in the temp dir between
sessions; tribune's own wheel is built once per session (`pip wheel --no-deps`). A second and a
third version are the same wheel with another version number written into it."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "install.sh"
EXAMPLE = REPO / "examples" / "baku-training-room-1.toml"


def pip_wheel(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", *args],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=600,
    )


def dependency_wheels() -> Path:
    """Every dependency as a wheel, built once per pyproject.toml (kept in the temp dir)."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "tribune-test-wheels" / key
    if not (cache / ".complete").exists():
        shutil.rmtree(cache, ignore_errors=True)
        pip_wheel(".", "-w", str(cache))
        for own in cache.glob("tribune-*.whl"):
            own.unlink()
        (cache / ".complete").touch()
    return cache


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def rewrite_version(wheel: Path, version: str, folder: Path) -> Path:
    """`wheel` with another version number (dist-info, METADATA, RECORD); returns the new file."""
    old = wheel.name.split("-")[1]
    out = folder / wheel.name.replace(f"-{old}-", f"-{version}-")
    with zipfile.ZipFile(wheel) as src:
        files = {name: src.read(name) for name in src.namelist()}
    renamed: dict[str, bytes] = {}
    for name, data in files.items():
        new_name = name.replace(f"tribune-{old}.dist-info/", f"tribune-{version}.dist-info/")
        if new_name.endswith(".dist-info/METADATA"):
            data = data.replace(f"\nVersion: {old}\n".encode(), f"\nVersion: {version}\n".encode())
        renamed[new_name] = data
    record = next(name for name in renamed if name.endswith(".dist-info/RECORD"))
    lines = [
        f"{name},{_record_hash(data)},{len(data)}"
        for name, data in renamed.items()
        if name != record
    ]
    renamed[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in renamed.items():
            dst.writestr(name, data)
    return out


@pytest.fixture(scope="session")
def wheel_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three wheel folders: this repo's version, 99.0.0 and 99.0.1 (each with every dependency)."""
    built = tmp_path_factory.mktemp("own")
    pip_wheel("--no-deps", ".", "-w", str(built))
    own = next(built.glob("tribune-*.whl"))
    deps = dependency_wheels()
    dirs = {}
    for label, version in (("v1", None), ("v2", "99.0.0"), ("v3", "99.0.1")):
        folder = tmp_path_factory.mktemp(label)
        for dep in deps.glob("*.whl"):
            (folder / dep.name).symlink_to(dep)
        if version is None:
            shutil.copy(own, folder)
        else:
            rewrite_version(own, version, folder)
        dirs[label] = folder
    return dirs


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """deploy/install.sh under /bin/sh (dash on Debian: POSIX only), into `root`."""
    return subprocess.run(
        ["/bin/sh", str(INSTALL), "--root", str(root), "--python", sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def current(root: Path, name: str = "venv") -> str:
    return os.readlink(root / "opt/tribune" / name)


def installed_version(root: Path) -> str:
    python = root / "opt/tribune/venv/bin/python"
    code = "import importlib.metadata as m; print(m.version('tribune'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def test_install_upgrade_rollback(wheel_dirs: dict[str, Path], root: Path, tmp_path: Path) -> None:
    version = next(wheel_dirs["v1"].glob("tribune-*.whl")).name.split("-")[1]

    # A first install: the release, the link, config, data dir, units and rules.
    by_path = "/dev/serial/by-path/pci-0000:00:05.0-usb-0:1:1.0-port0"
    done = install(
        root,
        "--wheels",
        str(wheel_dirs["v1"]),
        "--config",
        str(EXAMPLE),
        "--udev-node",
        f"projector={by_path}",
    )
    assert done.returncode == 0, done.stderr
    assert f"switched: none -> {version}" in done.stdout
    assert current(root) == f"releases/{version}/venv"
    assert not (root / "opt/tribune/previous").exists()
    assert (root / f"opt/tribune/releases/{version}/.complete").exists()
    config = root / "etc/tribune/room.toml"
    assert config.read_bytes() == EXAMPLE.read_bytes()
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    assert (root / "var/lib/tribune").is_dir()
    assert os.readlink(root / "usr/local/bin/tribune") == "/opt/tribune/venv/bin/tribune"
    for unit in ("tribune.service", "tribune-hub.service"):
        shipped = (REPO / "systemd" / unit).read_bytes()
        assert (root / "etc/systemd/system" / unit).read_bytes() == shipped
    assert (root / "etc/systemd/user/tribune-kiosk.service").exists()
    rules = root / "etc/udev/rules.d"
    assert {p.name for p in rules.iterdir()} >= {
        "60-tribune-input.rules",
        "61-tribune-usbrelay.rules",
        "70-tribune.rules",
    }
    placed = (
        'SUBSYSTEM=="tty", ENV{ID_PATH}=="pci-0000:00:05.0-usb-0:1:1.0", ATTRS{port_number}=="0", '
        'SYMLINK+="tribune/projector", GROUP="tribune", MODE="0660"'
    )
    assert placed in (rules / "70-tribune.rules").read_text(encoding="utf-8").splitlines()
    assert "# board: /dev/tribune/board: which USB socket?" in (
        rules / "70-tribune.rules"
    ).read_text(encoding="utf-8")
    tribune = root / "opt/tribune/venv/bin/tribune"  # through the link, as the unit runs it
    check = subprocess.run([str(tribune), "config", "check", str(config)], capture_output=True)
    assert check.returncode == 0, check.stdout

    # The same wheel again: reused, nothing switched; a site's config and input rules are kept.
    config.write_text(config.read_text(encoding="utf-8") + "# edited on site\n", encoding="utf-8")
    (rules / "60-tribune-input.rules").write_text("# this site's keypad\n", encoding="utf-8")
    done = install(root, "--wheels", str(wheel_dirs["v1"]), "--config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "already built from this wheel: reusing it" in done.stdout
    assert "kept" in done.stdout
    assert config.read_text(encoding="utf-8").endswith("# edited on site\n")

    # Data written by the service survives everything below.
    (root / "var/lib/tribune/tribune.db").write_bytes(b"state")

    # Upgrade.
    done = install(root, "--wheels", str(wheel_dirs["v2"]))
    assert done.returncode == 0, done.stderr
    assert f"switched: {version} -> 99.0.0" in done.stdout
    assert current(root) == "releases/99.0.0/venv"
    assert current(root, "previous") == f"releases/{version}/venv"
    assert installed_version(root) == "99.0.0"
    assert placed in (rules / "70-tribune.rules").read_text(encoding="utf-8").splitlines()
    assert (rules / "60-tribune-input.rules").read_text(
        encoding="utf-8"
    ) == "# this site's keypad\n"

    # Rollback, then forward again.
    done = install(root, "--rollback")
    assert done.returncode == 0, done.stderr
    assert f"rolled back: 99.0.0 -> {version}" in done.stdout
    assert current(root) == f"releases/{version}/venv"
    assert installed_version(root) == version
    status = install(root, "--status")
    assert status.stdout == f"current:  {version}\nprevious: 99.0.0\n"
    assert install(root, "--rollback").returncode == 0
    assert installed_version(root) == "99.0.0"

    # A release that refuses the room's config is not switched to.
    good = config.read_text(encoding="utf-8")
    config.write_text(good.replace('profile = "extron-sis"', 'profile = "extron-sis"\nbaud = 1'))
    done = install(root, "--wheels", str(wheel_dirs["v1"]))
    assert done.returncode == 1
    assert "refuses" in done.stderr
    assert "baud" in done.stdout  # config check's own words
    assert current(root) == "releases/99.0.0/venv"
    config.write_text(good, encoding="utf-8")

    # A third version: the oldest release goes, current and previous stay.
    done = install(root, "--wheels", str(wheel_dirs["v3"]))
    assert done.returncode == 0, done.stderr
    assert f"removed old release {version}" in done.stdout
    releases = {p.name for p in (root / "opt/tribune/releases").iterdir()}
    assert releases == {"99.0.0", "99.0.1"}
    assert (root / "var/lib/tribune/tribune.db").read_bytes() == b"state"
    assert config.read_text(encoding="utf-8") == good

    # Another build of 99.0.1 (same version, other bytes) goes beside it, never over the
    # release that runs.
    rebuilt = tmp_path / "rebuilt"
    rebuilt.mkdir()
    for wheel in wheel_dirs["v3"].glob("*.whl"):
        if wheel.name.startswith("tribune-"):
            shutil.copy(wheel, rebuilt / wheel.name)
            with zipfile.ZipFile(rebuilt / wheel.name, "a") as changed:
                changed.writestr("tribune/_rebuilt.txt", "another build")
        else:
            (rebuilt / wheel.name).symlink_to(wheel.resolve())
    done = install(root, "--wheels", str(rebuilt))
    assert done.returncode == 0, done.stderr
    assert current(root).startswith("releases/99.0.1+")
    assert current(root, "previous") == "releases/99.0.1/venv"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give --wheels DIR"),
        (["--bogus"], 2, "unknown argument: --bogus"),
        (["--wheels"], 2, "--wheels wants a folder"),
        (["--wheels", "/nonexistent"], 1, "no such folder"),
        (["--rollback"], 1, "no previous release"),
    ],
)
def test_usage_and_early_failures(args: list[str], code: int, message: str, root: Path) -> None:
    done = install(root, *args)
    assert done.returncode == code
    assert message in done.stderr


def test_a_folder_without_a_tribune_wheel(root: Path, tmp_path: Path) -> None:
    done = install(root, "--wheels", str(tmp_path))
    assert done.returncode == 1
    assert "no tribune-*.whl" in done.stderr
    assert not (root / "opt/tribune/venv").exists()


def test_help_is_the_header() -> None:
    done = subprocess.run(["/bin/sh", str(INSTALL), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("tribune: install, upgrade or roll back")
    assert "Exit codes:" in done.stdout
