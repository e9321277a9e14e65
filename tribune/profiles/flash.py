"""Flash a device profile into a running room, and roll it back, without a restart.

`ProfileFlasher.flash` pauses the device (its runtime stops and releases the port), probes the
device on that port with the new profile, and only if it matches (or `force`) installs the file
in the `ProfileStore`, records the device's flash, hot-swaps the device's runtime (the room keeps
its desired state and the new runtime re-reads everything) and audits it. Anything refused or
failed before the install leaves everything as it was and the old runtime resumes. The other
devices of the room are never paused.

It sits above the room (it drives `Room`), although it lives beside the profile store.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tribune.drivers.capabilities import CompiledProfile
from tribune.drivers.probe import ProbeReport, probe
from tribune.errors import ConfigError, NotSupportedError, ProfileError, TribuneError
from tribune.profiles.devices import DeviceFlash, ProfileFile
from tribune.profiles.loader import MAX_PROFILE_BYTES, LoadedProfile
from tribune.profiles.schema import PROFILE_ID
from tribune.profiles.store import SHIPPED, HistoryEntry, InstallRecord, ProfileStore, sha256_of
from tribune.profiles.yamlload import load_yaml
from tribune.room import Room, UnknownError

log = logging.getLogger(__name__)


class FlashInProgressError(TribuneError):
    """Another flash or rollback of the same device is running."""


class ProbeRefusedError(TribuneError):
    """The device does not answer the new profile the way it says it should; nothing changed."""

    def __init__(self, message: str, report: ProbeReport | None, problems: list[str]) -> None:
        super().__init__(message)
        self.report = report
        self.problems = problems


class NothingToRollBackError(TribuneError):
    """The device runs the profile it was configured with, and nothing of it is installed."""


@dataclass(frozen=True, slots=True)
class Who:
    """Who asks: the audit's `who` and `actor`, and the name the store's history records."""

    who: str
    actor: str | None
    name: str


@dataclass(slots=True)
class FlashOutcome:
    """What a flash or a rollback did."""

    action: str  # "flash" | "rollback"
    device: str
    profile: str
    version: str
    sha256: str
    previous: dict[str, Any]  # the profile the device ran before: id, version, sha256
    record: InstallRecord | None  # the store's record (None: nothing changed in the store)
    origin: str | None = None  # where the running profile comes from: installed | shipped | file
    forced: bool = False
    probe: ProbeReport | None = None
    probe_error: str | None = None
    warnings: list[str] = field(default_factory=list)
    stale_devices: list[str] = field(default_factory=list)
    audit_id: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "action": self.action,
            "device": self.device,
            "profile": self.profile,
            "version": self.version,
            "sha256": self.sha256,
            "origin": self.origin,
            "previous": self.previous,
            "installed": self.record.to_json() if self.record is not None else None,
            "forced": self.forced,
            "probe": self.probe.to_json() if self.probe is not None else None,
            "probe_error": self.probe_error,
            "warnings": self.warnings,
            "stale_devices": self.stale_devices,
            "audit_id": self.audit_id,
        }


@dataclass(frozen=True, slots=True)
class DeviceProfileState:
    """What one device runs and what the store holds for that profile."""

    device: str
    profile: str
    version: str
    sha256: str | None
    origin: str | None  # installed | shipped | file
    installed_sha256: str | None  # the store's current file for that id (None: shipped)
    stale: bool  # the store holds another version than the one running (restart or flash)
    flashed: int  # flashes of this device that a device rollback can undo
    can_roll_back: bool
    busy: str | None  # "flashing" / "rolling back" while one runs
    broken: str | None  # why the device is not running, if it is not

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "device": self.device,
            "profile": self.profile,
            "version": self.version,
            "sha256": self.sha256,
            "origin": self.origin,
            "installed_sha256": self.installed_sha256,
            "stale": self.stale,
            "flashed": self.flashed,
            "can_roll_back": self.can_roll_back,
            "busy": self.busy,
            "broken": self.broken,
        }


class ProfileFlasher:
    """Flash, roll back and inspect the profiles of a running room's devices."""

    def __init__(self, room: Room, store: ProfileStore) -> None:
        self.room = room
        self.store = store
        self._busy: dict[str, str] = {}  # device -> what is being done to it
        self._store_lock = asyncio.Lock()  # history.json and devices.json are read-modify-write

    # --- flash ------------------------------------------------------------------------------

    async def flash(
        self,
        device_id: str,
        text: str,
        *,
        by: Who,
        filename: str | None = None,
        force: bool = False,
        timeout: float | None = None,
        sha256: str | None = None,
    ) -> FlashOutcome:
        """Probe `device_id` with the profile `text`; install and hot-swap it if it matches.

        Raises `ProfileError` (invalid profile, `FILE:LINE: field: reason`), `UnknownError`,
        `FlashInProgressError` or `ProbeRefusedError`; in each case nothing changed.
        """
        self._check_device(device_id)
        self._claim(device_id, "flashing")
        try:
            return await self._flash(device_id, text, by, filename, force, timeout, sha256)
        finally:
            self._busy.pop(device_id, None)

    async def _flash(
        self,
        device_id: str,
        text: str,
        by: Who,
        filename: str | None,
        force: bool,
        timeout: float | None,
        sha256: str | None,
    ) -> FlashOutcome:
        data = _utf8(text, filename)
        digest = sha256_of(data)
        if sha256 is not None and digest != sha256.lower():
            raise ProfileError(f"sha256 is {digest}, not the expected {sha256}", path=filename)
        name = filename or "profile.yaml"
        previous = self._running(device_id)
        with tempfile.TemporaryDirectory(prefix="tribune-flash-") as scratch:
            staged, loaded = await asyncio.to_thread(_stage, self.store, data, name, Path(scratch))
            profile = loaded.profile
            await self.room.pause_device(device_id, f"flashing {profile.id} v{profile.version}")
            try:
                report, probe_error = await self._probe(device_id, loaded, timeout)
                problems = report.problems() if report is not None else [str(probe_error)]
                matches = report is not None and report.matches
                if not matches and not force:
                    raise ProbeRefusedError(
                        f"{device_id} does not match {profile.id}: " + "; ".join(problems),
                        report,
                        problems,
                    )
                flash, record = await self._install(
                    device_id, staged, loaded, digest, name, by, forced=not matches
                )
            except BaseException as exc:
                await self.room.resume_device(device_id)
                if isinstance(exc, ProbeRefusedError):
                    detail = _detail(device_id, loaded, digest, previous, force, exc.problems)
                    await self._audit(
                        by, "profile.flash", detail, "refused: " + "; ".join(problems)
                    )
                raise
        await self._swap(device_id)
        outcome = FlashOutcome(
            "flash",
            device_id,
            profile.id,
            profile.version,
            digest,
            previous,
            record if flash.installed else None,
            origin=self._running(device_id)["origin"],
            forced=flash.forced,
            probe=report,
            probe_error=probe_error,
            warnings=self._warnings(device_id),
            stale_devices=self._stale(device_id, profile.id, digest),
        )
        result = "done (forced: the probe did not match)" if flash.forced else "done"
        detail = _detail(device_id, loaded, digest, previous, force, [] if matches else problems)
        outcome.audit_id = await self._audit(by, "profile.flash", detail, result)
        return outcome

    async def _install(
        self,
        device_id: str,
        staged: Path,
        loaded: LoadedProfile,
        digest: str,
        name: str,
        by: Who,
        *,
        forced: bool,
    ) -> tuple[DeviceFlash, InstallRecord]:
        """Install the staged file and record the device's flash (atomic files, one at a time)."""
        flashes = self.room.flashes
        assert flashes is not None
        profile = loaded.profile
        async with self._store_lock:
            already = await asyncio.to_thread(self.store.current_sha256, profile.id)
            record = await asyncio.to_thread(
                self.store.install, staged, by=by.name, source=f"flash of {device_id} ({name})"
            )
            flash = DeviceFlash(
                profile.id,
                profile.version,
                digest,
                installed=already != digest,
                forced=forced,
                at=time.time(),
                by=by.name,
            )
            await asyncio.to_thread(flashes.push, device_id, flash)
        return flash, record

    async def _probe(
        self, device_id: str, loaded: LoadedProfile, timeout: float | None
    ) -> tuple[ProbeReport | None, str | None]:
        """The device's answers to the new profile, or why it could not be asked."""
        device = self.room.config.devices[device_id]
        runtime = self.room.runtimes.get(device_id)
        port = runtime.port if runtime is not None else device.port
        try:
            password = await asyncio.to_thread(device.read_password, self.room.base_dir)
            report = await probe(
                loaded.profile,
                port,
                password=password,
                line=device.line,
                options=device.options,
                timeout=timeout,
            )
        except TribuneError as exc:
            return None, f"{port}: {exc}"
        return report, None

    # --- rollback ---------------------------------------------------------------------------

    async def rollback(self, device_id: str, *, by: Who) -> FlashOutcome:
        """Undo the device's last flash (or roll back its profile's installed version).

        The device's last flash is popped: its profile goes back to the previous flash's or
        room.toml's, and the store's version is rolled back if that flash installed it. A device
        never flashed here has its profile's installed version rolled back. No probe: this is
        the way back.
        """
        self._check_device(device_id)
        self._claim(device_id, "rolling back")
        try:
            return await self._rollback(device_id, by)
        finally:
            self._busy.pop(device_id, None)

    async def _rollback(self, device_id: str, by: Who) -> FlashOutcome:
        room = self.room
        previous = self._running(device_id)
        running = previous["profile"]
        await room.pause_device(device_id, "rolling back its profile")
        try:
            async with self._store_lock:
                record = await asyncio.to_thread(self._rollback_files, device_id, running, by)
        except BaseException:
            await room.resume_device(device_id)
            raise
        await self._swap(device_id)
        now = self._running(device_id)
        outcome = FlashOutcome(
            "rollback",
            device_id,
            now["profile"],
            now["version"],
            now["sha256"] or "",
            previous,
            record,
            origin=now["origin"],
            warnings=self._warnings(device_id),
            stale_devices=self._stale(device_id, record.id, record.sha256) if record else [],
        )
        detail = {"device": device_id, "profile": now["profile"], "version": now["version"]}
        detail["sha256"] = now["sha256"]
        detail["previous"] = previous
        outcome.audit_id = await self._audit(by, "profile.rollback", detail, "done")
        return outcome

    def _rollback_files(self, device_id: str, running: str, by: Who) -> InstallRecord | None:
        """The store and device-flash side of a rollback (in a thread, under the lock)."""
        flashes = self.room.flashes
        assert flashes is not None
        top = flashes.top(device_id)
        if top is None:
            if self.store.current_sha256(running) is None:
                raise NothingToRollBackError(
                    f"{device_id} runs {running} as shipped and was never flashed here: "
                    "nothing to roll back"
                )
            return self.store.rollback(running, by=by.name)
        record = None
        if top.installed and self.store.current_sha256(top.profile) == top.sha256:
            record = self.store.rollback(top.profile, by=by.name)
        flashes.pop(device_id)
        return record

    # --- reading ----------------------------------------------------------------------------

    async def history(self, profile_id: str) -> list[HistoryEntry]:
        """The store's installs and rollbacks of `profile_id`, newest first."""
        if not re.match(PROFILE_ID, profile_id):
            raise UnknownError(f"{profile_id!r} is not a profile id")
        return await asyncio.to_thread(self.store.history, profile_id)

    async def devices(self) -> list[DeviceProfileState]:
        """Every configured device: the profile it runs, what is installed, what can be undone."""
        return await asyncio.to_thread(self._devices)

    def _devices(self) -> list[DeviceProfileState]:
        room = self.room
        found = []
        for device_id in room.config.devices:
            running = self._running(device_id)
            installed = _quiet(self.store.current_sha256, running["profile"])
            flashed = len(room.flashes.stack(device_id)) if room.flashes is not None else 0
            on_disk = self._loadable_sha(running["profile"])
            found.append(
                DeviceProfileState(
                    device=device_id,
                    profile=running["profile"],
                    version=running["version"],
                    sha256=running["sha256"],
                    origin=running["origin"],
                    installed_sha256=installed,
                    stale=on_disk is not None and on_disk != running["sha256"],
                    flashed=flashed,
                    can_roll_back=bool(flashed) or installed is not None,
                    busy=self._busy.get(device_id),
                    broken=room.broken.get(device_id),
                )
            )
        return found

    # --- internals --------------------------------------------------------------------------

    def _check_device(self, device_id: str) -> None:
        if device_id not in self.room.config.devices:
            known = ", ".join(self.room.config.devices)
            raise UnknownError(f"no device {device_id!r} (devices: {known})")
        if self.room.flashes is None:
            raise NotSupportedError("this room has no profile store (no data dir)")

    def _claim(self, device_id: str, what: str) -> None:
        busy = self._busy.get(device_id)
        if busy is not None:
            raise FlashInProgressError(f"{device_id} is {busy} already; try again when it is done")
        self._busy[device_id] = what  # no await since the check: two callers cannot both pass

    def _running(self, device_id: str) -> dict[str, Any]:
        """The profile the device runs now: id, version, sha256 and origin."""
        runtime = self.room.runtimes.get(device_id)
        source = self.room.profile_files.get(device_id)
        if runtime is None:
            profile_id = self.room.config.devices[device_id].profile
            return {"profile": profile_id, "version": "", "sha256": None, "origin": None}
        return {
            "profile": runtime.profile.id,
            "version": runtime.profile.version,
            "sha256": source.sha256 if source is not None else None,
            "origin": source.origin if source is not None else None,
        }

    async def _swap(self, device_id: str) -> None:
        """Load the device's profile as a restart would and hot-swap its runtime to it."""
        room = self.room

        def build() -> tuple[Any, ProfileFile]:
            loaded = room.load_device_profile(device_id)
            return room.build_runtime(device_id, loaded.profile), ProfileFile.of(
                loaded.path, self.store
            )

        try:
            runtime, source = await asyncio.to_thread(build)
        except (ConfigError, TribuneError, OSError) as exc:
            # Installed, but it cannot run here (a password file went missing...): keep the
            # old runtime running; a restart will try the installed profile again.
            log.error("%s: the new profile cannot be started: %s", device_id, exc)
            await room.resume_device(device_id)
            raise
        await room.replace_device(device_id, runtime, source)

    def _loadable_sha(self, profile_id: str) -> str | None:
        try:
            return sha256_of(self.room.loader.find(profile_id).read_bytes())
        except (ConfigError, OSError):
            return None

    def _stale(self, device_id: str, profile_id: str, sha: str) -> list[str]:
        """Other devices running another version of `profile_id` than the store now holds."""
        if sha == SHIPPED:
            sha = self._loadable_sha(profile_id) or sha
        return [
            other
            for other, runtime in self.room.runtimes.items()
            if other != device_id
            and runtime.profile.id == profile_id
            and (source := self.room.profile_files.get(other)) is not None
            and source.sha256 != sha
        ]

    def _warnings(self, device_id: str) -> list[str]:
        """Scene, source and desired values of this device that its new profile refuses."""
        runtime = self.room.runtimes.get(device_id)
        if runtime is None:
            return []
        return profile_warnings(self.room, device_id, runtime.compiled)

    async def _audit(self, by: Who, action: str, detail: dict[str, Any], result: str) -> int:
        entry = await self.room.store.audit(by.who, by.actor, action, detail, result)
        self.room.bus.publish("audit", entry.as_dict())
        return entry.id


def profile_warnings(room: Room, device_id: str, compiled: CompiledProfile) -> list[str]:
    """What room.toml and the stored desired state ask of `device_id` that `compiled` refuses."""
    asked: list[tuple[str, dict[str, Any]]] = []
    for kind, table in (("scenes", room.config.scenes), ("sources", room.config.sources)):
        for name, entry in table.items():
            if device_id in entry.desired:
                asked.append((f"{kind}.{name}.desired.{device_id}", entry.desired[device_id]))
    asked.append((f"desired.{device_id}", dict(room.desired.get(device_id, {}))))
    warnings = []
    for where, caps in asked:
        for capability, value in caps.items():
            try:
                cap = compiled.capability(capability)
                if not cap.settable:
                    raise NotSupportedError(f"{capability} is read-only")
                compiled.normalize(cap, value)
            except NotSupportedError as exc:
                warnings.append(f"{where}.{capability}: {exc}")
    return warnings


def _stage(store: ProfileStore, data: bytes, name: str, folder: Path) -> tuple[Path, LoadedProfile]:
    """Write the profile as `<id>.yaml` in `folder` and validate it as the store would.

    Errors name `name` (the file the technician sent) with the line and field.
    """
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(
            f"{len(data)} bytes; profiles are at most {MAX_PROFILE_BYTES}", path=name
        )
    doc = load_yaml(data.decode("utf-8"), name)  # a syntax error names the line
    profile_id = doc.data.get("id") if isinstance(doc.data, dict) else None
    if not isinstance(profile_id, str) or not re.match(PROFILE_ID, profile_id):
        why = "required field is missing" if profile_id is None else "not a profile id"
        raise ProfileError(f"id: {why}", path=name, line=doc.line_of(("id",)) or 1)
    staged = folder / f"{profile_id}.yaml"
    staged.write_bytes(data)
    try:
        loaded = store.validate(staged)
    except ConfigError as exc:
        if exc.path != str(staged):
            raise  # the parent it `extends:` is broken: that file is named
        raise ProfileError(exc.reason, path=name, line=exc.line) from None
    return staged, loaded


def _utf8(text: str, filename: str | None) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProfileError("not UTF-8 text", path=filename) from None


def _detail(
    device_id: str,
    loaded: LoadedProfile,
    digest: str,
    previous: dict[str, Any],
    force: bool,
    problems: list[str],
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "device": device_id,
        "profile": loaded.profile.id,
        "version": loaded.profile.version,
        "sha256": digest,
        "previous": previous,
        "force": force,
    }
    if problems:
        detail["problems"] = problems
    return detail


def _quiet(read: Any, profile_id: str) -> str | None:
    try:
        value: str | None = read(profile_id)
    except ConfigError:
        return None
    return value


def stage_profile(
    store: ProfileStore, data: bytes, name: str, folder: Path
) -> tuple[Path, LoadedProfile]:
    """Validate profile bytes as `store` would install them (`ProfileError` naming `name`, the
    line and the field), staged as `<id>.yaml` in `folder`. Blocking: run it in a thread."""
    return _stage(store, data, name, folder)
