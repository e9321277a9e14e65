"""The profile store: install, override the shipped profile, history, rollback, atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tribune.errors import ProfileError
from tribune.profiles.loader import shipped_profiles_dir
from tribune.profiles.store import SHIPPED, ProfileStore

SHIPPED_EXTRON = shipped_profiles_dir() / "switcher" / "extron-sis.yaml"


def extron_variant(folder: Path, version: str, name: str = "Extron SIS (site build)") -> Path:
    """A copy of the shipped Extron profile with another version and name."""
    text = SHIPPED_EXTRON.read_text(encoding="utf-8")
    lines = [
        f"version: {version!r}" if line.startswith("version:") else line
        for line in text.splitlines()
    ]
    lines = [f"name: {name}" if line.startswith("name:") else line for line in lines]
    if not any(line.startswith("version:") for line in lines):
        lines.append(f"version: {version!r}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "extron-sis.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_install_overrides_the_shipped_profile(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data")
    assert store.loader().load("extron-sis").path == SHIPPED_EXTRON
    record = store.install(extron_variant(tmp_path / "new", "7"), by="aysel")
    assert (record.id, record.version, record.installed_by) == ("extron-sis", "7", "aysel")
    assert record.previous_sha256 is None
    loaded = store.loader().load("extron-sis")
    assert loaded.path == store.installed_path("extron-sis")
    assert loaded.profile.version == "7"
    assert store.installed() == ["extron-sis"]
    # Another profile still comes from firmware-profiles/.
    assert store.loader().load("kramer-p3000").path.is_relative_to(shipped_profiles_dir())


def test_history_and_rollback_walk_back_to_the_shipped_default(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data")
    first = store.install(extron_variant(tmp_path / "a", "7"), by="aysel")
    second = store.install(extron_variant(tmp_path / "b", "8"), by="rashad")
    assert second.previous_sha256 == first.sha256
    history = store.history("extron-sis")
    assert [e.record.version for e in history] == ["8", "7"]
    assert [e.current for e in history] == [True, False]

    back = store.rollback("extron-sis", by="aysel")
    assert (back.action, back.version, back.sha256) == ("rollback", "7", first.sha256)
    assert store.loader().load("extron-sis").profile.version == "7"
    assert store.history("extron-sis")[0].current

    shipped = store.rollback("extron-sis")
    assert shipped.sha256 == SHIPPED
    assert store.loader().load("extron-sis").path == SHIPPED_EXTRON
    with pytest.raises(ProfileError, match="nothing installed"):
        store.rollback("extron-sis")


def test_installing_the_same_file_twice_records_it_once(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data")
    path = extron_variant(tmp_path / "a", "7")
    assert store.install(path) == store.install(path)
    assert len(store.history("extron-sis")) == 1


def test_a_broken_profile_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data")
    path = extron_variant(tmp_path / "bad", "9")
    path.write_text(
        path.read_text(encoding="utf-8").replace("codec: line", "codec: lnie"), encoding="utf-8"
    )
    with pytest.raises(ProfileError) as caught:
        store.install(path)
    assert caught.value.path == str(path)
    assert caught.value.line is not None
    assert "codec" in str(caught.value)
    assert store.installed() == []


def test_a_file_named_after_another_id_is_refused(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "data")
    wrong = tmp_path / "kramer-p3000.yaml"
    wrong.write_text(SHIPPED_EXTRON.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProfileError, match="must match the file name"):
        store.install(wrong)


def test_ids_cannot_leave_the_store(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not a profile id"):
        ProfileStore(tmp_path).history("../etc")


def test_a_crash_before_the_rename_leaves_the_old_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ProfileStore(tmp_path / "data")
    store.install(extron_variant(tmp_path / "a", "7"))
    before = store.installed_path("extron-sis").read_bytes()

    def power_cut(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        store.install(extron_variant(tmp_path / "b", "8"))
    monkeypatch.undo()
    assert store.installed_path("extron-sis").read_bytes() == before
    assert not list(store.installed_path("extron-sis").parent.glob(".*.tmp"))
    assert store.loader().load("extron-sis").profile.version == "7"


INSTALL_LOOP = """
import sys
from pathlib import Path
from tribune.profiles.store import ProfileStore
store = ProfileStore(Path(sys.argv[1]))
files = [Path(p) for p in sys.argv[2:]]
store.install(files[1], by="loop")  # one whole install first: a slow machine may be killed early
print("ready", flush=True)
i = 0
while True:
    store.install(files[i % 2], by="loop")
    i += 1
"""


def test_kill_9_during_installs_leaves_a_whole_profile(tmp_path: Path) -> None:
    """SIGKILL at random points of install after install: the file is always A or B, whole."""
    a = extron_variant(tmp_path / "a", "7", name="A" * 2000)
    b = extron_variant(tmp_path / "b", "8", name="B" * 3000)
    whole = {a.read_bytes(), b.read_bytes()}
    data = tmp_path / "data"
    for delay in (0.05, 0.11, 0.17, 0.23):
        proc = subprocess.Popen(
            [sys.executable, "-c", INSTALL_LOOP, str(data), str(a), str(b)],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = ProfileStore(data)
        assert store.installed_path("extron-sis").read_bytes() in whole
        assert store.loader().load("extron-sis").profile.version in ("7", "8")
        assert store.history("extron-sis")  # still readable
