"""Installed device profiles: the data dir's overrides of the shipped firmware-profiles/.

Layout under `data_dir/profiles/`::

    <id>/<id>.yaml              the installed profile (what the loader reads)
    <id>/history.json           every install and rollback, oldest first
    <id>/versions/<sha256>.yaml every version ever installed, so a rollback needs no network

The loader globs `*/*.yaml`, so `versions/` and temporary files (`.name.tmp`) are invisible to it.
Every file is replaced atomically (temp file in the same folder, fsync, rename, fsync the folder):
after a power cut the installed profile is the old one or the new one, never half of either.
The rename of `<id>.yaml` is the commit point; `history.json` is written after it, so the
installed file is the truth and `history()` marks the record that matches it.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tribune.errors import ProfileError
from tribune.profiles.loader import LoadedProfile, ProfileLoader, shipped_profiles_dir
from tribune.profiles.schema import PROFILE_ID

HISTORY_FILE = "history.json"
VERSIONS_DIR = "versions"
SHIPPED = "shipped"  # the `sha256` a rollback to the shipped default records


@dataclass(frozen=True, slots=True)
class InstallRecord:
    """One install or rollback of a profile: what, which version, when and by whom."""

    id: str
    version: str  # the profile's own `version:` field ("" for the shipped default)
    sha256: str  # of the file's bytes, or "shipped" when the override was removed
    installed_at: float  # wall clock, seconds
    installed_by: str
    action: str  # "install" | "rollback"
    previous_sha256: str | None  # what was installed before (None: the shipped default)
    source: str = ""  # the file it was installed from

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A record and whether its version is the one installed now."""

    record: InstallRecord
    current: bool


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves the old content or the new, never half."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (the directory entry itself is data)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in a container
        return f"uid {os.getuid()}"


class ProfileStore:
    """Installed profiles in `data_dir/profiles/`, overriding the shipped ones."""

    def __init__(self, data_dir: Path, shipped_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "profiles"
        self.shipped_dir = shipped_dir or shipped_profiles_dir()

    # --- reading ----------------------------------------------------------------------------

    def search_dirs(self) -> list[Path]:
        """Where a room looks for profiles: installed first, then shipped."""
        return [self.root, self.shipped_dir]

    def loader(self) -> ProfileLoader:
        """A loader that sees installed profiles before the shipped ones."""
        return ProfileLoader(self.search_dirs())

    def installed_path(self, profile_id: str) -> Path:
        """The file the loader reads for an installed profile."""
        _check_id(profile_id)
        return self.root / profile_id / f"{profile_id}.yaml"

    def installed(self) -> list[str]:
        """Ids of the installed profiles."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/*.yaml") if p.stem == p.parent.name)

    def current_sha256(self, profile_id: str) -> str | None:
        """SHA-256 of the installed file, or None when the shipped default is in use."""
        try:
            return sha256_of(self.installed_path(profile_id).read_bytes())
        except FileNotFoundError:
            return None

    def history(self, profile_id: str) -> list[HistoryEntry]:
        """Every install and rollback of `profile_id`, newest first; the current one marked."""
        records = self._records(profile_id)
        current = self.current_sha256(profile_id) or SHIPPED
        entries: list[HistoryEntry] = []
        marked = False
        for record in reversed(records):
            is_current = not marked and record.sha256 == current
            marked = marked or is_current
            entries.append(HistoryEntry(record, is_current))
        return entries

    # --- changing ---------------------------------------------------------------------------

    def validate(self, path: Path) -> LoadedProfile:
        """Load `path` as the store would install it; `ProfileError` names file:line:field."""
        return ProfileLoader([self.root, self.shipped_dir]).load_file(Path(path))

    def install(
        self, path: Path, *, by: str | None = None, source: str | None = None
    ) -> InstallRecord:
        """Validate the profile file at `path` and install it atomically; returns the record.

        `source` is what the history says it came from (default: the file's path). Installing
        the version already installed records nothing new and returns its record.
        """
        loaded = self.validate(path)
        data = Path(path).read_bytes()
        profile_id = loaded.profile.id
        digest = sha256_of(data)
        previous = self.current_sha256(profile_id)
        if previous == digest:
            for record in reversed(self._records(profile_id)):
                if record.sha256 == digest:
                    return record
        record = InstallRecord(
            id=profile_id,
            version=loaded.profile.version,
            sha256=digest,
            installed_at=time.time(),
            installed_by=by or _default_user(),
            action="install",
            previous_sha256=previous,
            source=source or str(Path(path).resolve()),
        )
        self._commit(profile_id, data, record)
        return record

    def rollback(self, profile_id: str, *, by: str | None = None) -> InstallRecord:
        """Put back the version installed before the current one (or the shipped default).

        Rollbacks walk back through the installs: after installing A then B, the first rollback
        gives A, the second the shipped profile.
        """
        current = self.current_sha256(profile_id)
        if current is None:
            raise ProfileError(f"{profile_id}: nothing installed; the shipped profile is in use")
        records = self._records(profile_id)
        chain = _install_chain(records)
        if chain and chain[-1] == current:
            chain.pop()
        # else: a crash came between the rename and the history: go back to the last recorded.
        target = chain[-1] if chain else None
        who = by or _default_user()
        if target is None:
            record = InstallRecord(
                profile_id, "", SHIPPED, time.time(), who, "rollback", current, ""
            )
            self._remove_override(profile_id, record)
            return record
        data = self._version_bytes(profile_id, target)
        version = next((r.version for r in reversed(records) if r.sha256 == target), "")
        record = InstallRecord(
            profile_id, version, target, time.time(), who, "rollback", current, ""
        )
        self._commit(profile_id, data, record)
        return record

    # --- internals --------------------------------------------------------------------------

    def _folder(self, profile_id: str) -> Path:
        _check_id(profile_id)
        return self.root / profile_id

    def _records(self, profile_id: str) -> list[InstallRecord]:
        path = self._folder(profile_id) / HISTORY_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ProfileError(f"unreadable history: {exc}", path=str(path)) from None
        return [InstallRecord(**item) for item in _items(raw, path)]

    def _version_bytes(self, profile_id: str, digest: str) -> bytes:
        path = self._folder(profile_id) / VERSIONS_DIR / f"{digest}.yaml"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ProfileError("the previous version is missing", path=str(path)) from None
        if sha256_of(data) != digest:
            raise ProfileError("the kept version is corrupt (sha256 differs)", path=str(path))
        return data

    def _commit(self, profile_id: str, data: bytes, record: InstallRecord) -> None:
        folder = self._folder(profile_id)
        kept = folder / VERSIONS_DIR / f"{record.sha256}.yaml"
        if not kept.exists():
            atomic_write(kept, data)
        atomic_write(folder / f"{profile_id}.yaml", data)  # the commit point
        self._append(profile_id, record)

    def _remove_override(self, profile_id: str, record: InstallRecord) -> None:
        folder = self._folder(profile_id)
        with contextlib.suppress(FileNotFoundError):
            (folder / f"{profile_id}.yaml").unlink()
        fsync_dir(folder)
        self._append(profile_id, record)

    def _append(self, profile_id: str, record: InstallRecord) -> None:
        records = [*self._records(profile_id), record]
        text = json.dumps([r.to_json() for r in records], indent=1, ensure_ascii=False)
        atomic_write(self._folder(profile_id) / HISTORY_FILE, (text + "\n").encode("utf-8"))


def _check_id(profile_id: str) -> None:
    """Refuse ids that could walk out of the store (`../x`)."""
    if not re.match(PROFILE_ID, profile_id):
        raise ProfileError(f"{profile_id!r} is not a profile id (lower-case letters, digits, -)")


def _install_chain(records: list[InstallRecord]) -> list[str]:
    """The versions a rollback walks back through, oldest first (each install pushes, each
    rollback pops)."""
    chain: list[str] = []
    for record in records:
        if record.action == "rollback":
            if chain:
                chain.pop()
        elif not chain or chain[-1] != record.sha256:
            chain.append(record.sha256)
    return chain


def _items(raw: Any, path: Path) -> Iterator[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ProfileError("history must be a JSON list", path=str(path))
    for item in raw:
        if not isinstance(item, dict):
            raise ProfileError("history entries must be objects", path=str(path))
        yield item
