"""Which profile a device runs after a technician flashed one: a stack per device, on disk.

room.toml names each device's profile. `profile flash` may put another one on a device (the
projector was replaced by another model), so the flash is kept in `data_dir/profiles/devices.json`
and survives a restart: the top of a device's stack names the profile it runs, and a device
rollback pops it. The file is replaced atomically, like the profiles themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tribune.errors import ProfileError
from tribune.profiles.loader import shipped_profiles_dir
from tribune.profiles.store import ProfileStore, atomic_write, sha256_of

DEVICES_FILE = "devices.json"


@dataclass(frozen=True, slots=True)
class DeviceFlash:
    """One flash of one device: the profile put on it, and whether this flash installed it."""

    profile: str
    version: str
    sha256: str
    installed: bool  # False: that version was installed already (a rollback leaves the store)
    forced: bool
    at: float
    by: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ProfileFile:
    """The file a device's running profile was loaded from."""

    path: str
    sha256: str
    origin: str  # "installed" (the data dir), "shipped" (firmware-profiles/) or "file"

    @classmethod
    def of(cls, path: Path, store: ProfileStore | None) -> ProfileFile:
        """Describe `path` (reads it: call off the event loop)."""
        resolved = Path(path).resolve()
        shipped = store.shipped_dir if store is not None else shipped_profiles_dir()
        origin = "file"
        if store is not None and resolved.is_relative_to(store.root.resolve()):
            origin = "installed"
        elif resolved.is_relative_to(shipped.resolve()):
            origin = "shipped"
        return cls(str(resolved), sha256_of(resolved.read_bytes()), origin)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class DeviceFlashes:
    """The flashes of every device of this tribune, newest last."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "profiles" / DEVICES_FILE

    def stack(self, device_id: str) -> list[DeviceFlash]:
        """The device's flashes, oldest first (empty: it runs room.toml's profile)."""
        return list(self._read().get(device_id, []))

    def top(self, device_id: str) -> DeviceFlash | None:
        """The flash the device runs now, if any."""
        stack = self.stack(device_id)
        return stack[-1] if stack else None

    def push(self, device_id: str, flash: DeviceFlash) -> None:
        """Record a flash of `device_id`."""
        data = self._read()
        data.setdefault(device_id, []).append(flash)
        self._write(data)

    def pop(self, device_id: str) -> DeviceFlash | None:
        """Forget the device's last flash; returns it (None: there was none)."""
        data = self._read()
        stack = data.get(device_id, [])
        if not stack:
            return None
        flash = stack.pop()
        if not stack:
            del data[device_id]
        self._write(data)
        return flash

    def _read(self) -> dict[str, list[DeviceFlash]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProfileError(f"unreadable device flashes: {exc}", path=str(self.path)) from None
        if not isinstance(raw, dict):
            raise ProfileError("device flashes must be a JSON object", path=str(self.path))
        try:
            return {
                str(device): [DeviceFlash(**item) for item in items]
                for device, items in raw.items()
            }
        except TypeError as exc:
            raise ProfileError(f"bad device flash: {exc}", path=str(self.path)) from None

    def _write(self, data: dict[str, list[DeviceFlash]]) -> None:
        plain = {device: [f.to_json() for f in stack] for device, stack in sorted(data.items())}
        text = json.dumps(plain, indent=1, ensure_ascii=False) + "\n"
        atomic_write(self.path, text.encode("utf-8"))
