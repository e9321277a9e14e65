"""The room: its devices, what people asked of them (desired) and what they report.

Every input — panel, API, buttons, hub, schedule, CLI — expresses intent here. An intent is
checked against the devices' profiles, written to the store with its audit entry (durable before
it is acknowledged), and handed to each device's reconciler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tribune.config import RoomConfig
from tribune.drivers.capabilities import CompiledProfile, Value
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus, check_port
from tribune.errors import ConfigError, DeviceBusyError, NotSupportedError, TribuneError
from tribune.events import EventBus
from tribune.profiles.devices import DeviceFlashes, ProfileFile
from tribune.profiles.loader import LoadedProfile, ProfileLoader
from tribune.profiles.schema import Profile
from tribune.profiles.store import ProfileStore
from tribune.reconcile import DeviceReconciler
from tribune.store import AuditEntry, Store

log = logging.getLogger(__name__)

USAGE_FLUSH_SECONDS = 60.0
RESTING = ("off", "standby")
# Momentary picture states: kept while the class runs, dropped when the device is switched off.
SESSION_CAPABILITIES = ("video_mute", "freeze")
WHO = ("panel", "button", "api", "hub", "schedule", "cli", "system")

RuntimeFactory = Callable[[str, Profile], DeviceRuntime]


class UnknownError(NotSupportedError):
    """No such device, scene, source or action in this room."""


class Room:
    """Devices, desired state, reconcilers, audit and usage of one room."""

    def __init__(
        self,
        config: RoomConfig,
        store: Store,
        *,
        base_dir: Path | None = None,
        loader: ProfileLoader | None = None,
        runtimes: Mapping[str, DeviceRuntime] | None = None,
        profiles: ProfileStore | None = None,
        runtime_factory: RuntimeFactory | None = None,
    ) -> None:
        """`profiles`: the data dir's installed profiles (they override the shipped ones, and
        devices flashed with another profile keep it); `runtime_factory` builds a device's
        runtime from its profile (default: from the device's config entry)."""
        self.config = config
        self.id = config.room.id
        self.store = store
        self.bus = EventBus()
        self.desired: dict[str, dict[str, Value]] = {}
        self.source: str | None = None
        self.runtimes: dict[str, DeviceRuntime] = dict(runtimes or {})
        self.broken: dict[str, str] = {}  # devices that could not be set up, and why
        self.profiles = profiles
        self.flashes = DeviceFlashes(profiles.data_dir) if profiles is not None else None
        self.profile_files: dict[str, ProfileFile] = {}  # what each device's profile came from
        self.maintenance: dict[str, str] = {}  # devices paused for a technician, and why
        self._loader = loader or (profiles.loader() if profiles is not None else ProfileLoader())
        self._runtime_factory = runtime_factory or self._runtime_from_config
        self._base_dir = base_dir or Path.cwd()
        self.reconcilers: dict[str, DeviceReconciler] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._reported_queue: asyncio.Queue[tuple[str, str, Any, float, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._usage_mark = time.monotonic()
        self._converged = False
        self._open_intents: list[int] = []  # acknowledged, not yet converged
        self._background: set[asyncio.Future[None]] = set()
        if runtimes:
            for device_id, runtime in self.runtimes.items():
                with contextlib.suppress(ConfigError, OSError):
                    path = self._loader.find(runtime.profile.id)
                    self.profile_files[device_id] = ProfileFile.of(path, self.profiles)
        else:
            self._build_runtimes()

    @property
    def base_dir(self) -> Path:
        """The room config's folder (password files are relative to it)."""
        return self._base_dir

    @property
    def loader(self) -> ProfileLoader:
        """Where this room finds profiles: installed ones first, then the shipped ones."""
        return self._loader

    def _build_runtimes(self) -> None:
        for device_id in self.config.devices:
            try:
                loaded = self.load_device_profile(device_id)
                self.runtimes[device_id] = self.build_runtime(device_id, loaded.profile)
                self.profile_files[device_id] = ProfileFile.of(loaded.path, self.profiles)
            except (ConfigError, TribuneError, OSError) as exc:
                # One broken device never takes the room down: the rest runs, this one is shown.
                log.error("device %s: not started: %s", device_id, exc)
                self.broken[device_id] = str(exc)

    # --- device profiles (file I/O: off the event loop) -------------------------------------

    def profile_id_of(self, device_id: str) -> str:
        """The profile a device runs: the one it was last flashed with, else room.toml's."""
        configured = self.config.devices[device_id].profile
        if self.flashes is None:
            return configured
        try:
            top = self.flashes.top(device_id)
        except ConfigError as exc:
            log.error("device %s: %s; using room.toml's profile", device_id, exc)
            return configured
        return top.profile if top is not None else configured

    def load_device_profile(self, device_id: str) -> LoadedProfile:
        """Load the profile `device_id` should run (installed versions override shipped ones)."""
        wanted = self.profile_id_of(device_id)
        configured = self.config.devices[device_id].profile
        try:
            return self._loader.load(wanted)
        except ConfigError as exc:
            if wanted == configured:
                raise
            log.error("device %s: flashed profile unusable (%s); using room.toml's", device_id, exc)
            return self._loader.load(configured)

    def build_runtime(self, device_id: str, profile: Profile) -> DeviceRuntime:
        """A new (not started) runtime for a configured device, driven by `profile`."""
        return self._runtime_factory(device_id, profile)

    def _runtime_from_config(self, device_id: str, profile: Profile) -> DeviceRuntime:
        device = self.config.devices[device_id]
        return DeviceRuntime(
            device_id,
            profile,
            device.port,
            options=device.options,
            line=device.line,
            password=device.read_password(self._base_dir),
            poll=device.poll,
        )

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the desired state, start every device and reconcile."""
        self.source = await self.store.get_meta("source")
        if self.source not in self.config.sources:
            self.source = None
        stored = await self.store.desired()
        self.desired = {
            device: dict(caps)
            for device, caps in stored.items()
            if device in self.runtimes and caps
        }
        problems = await asyncio.to_thread(check_config_values, self.config, self._loader)
        for path, reason in problems:
            log.warning("room %s: %s: %s", self.id, ".".join(path), reason)
        for device_id, runtime in self.runtimes.items():
            await self._start_device(device_id, runtime)
        self._tasks = [
            asyncio.create_task(self._persist_reported(), name="persist-reported"),
            asyncio.create_task(self._count_usage(), name="usage"),
        ]
        log.info("room %s: %d devices, desired state restored", self.id, len(self.runtimes))

    async def _start_device(self, device_id: str, runtime: DeviceRuntime) -> None:
        """Drive `runtime` and reconcile it toward the device's desired state."""
        self._unsubscribe[device_id] = runtime.subscribe(self._on_device_event)
        reconciler = DeviceReconciler(
            runtime,
            lambda: self.desired.get(device_id, {}),
            on_change=self._publish_status,
            on_failure=self._audit_failure,
        )
        self.reconcilers[device_id] = reconciler
        await runtime.start()
        await reconciler.start()

    async def pause_device(self, device_id: str, why: str) -> None:
        """Stop driving one device and release its port (for a technician); the rest runs.

        Intents for it are stored as usual and reconciled when it resumes or is replaced.
        """
        self.maintenance[device_id] = why
        reconciler = self.reconcilers.get(device_id)
        if reconciler is not None:
            await reconciler.stop()
        unsubscribe = self._unsubscribe.pop(device_id, None)
        if unsubscribe is not None:
            unsubscribe()
        runtime = self.runtimes.get(device_id)
        if runtime is not None:
            await runtime.stop()
        log.warning("room %s: %s paused: %s", self.id, device_id, why)
        self._publish_device(device_id)

    async def resume_device(self, device_id: str) -> None:
        """Drive a paused device again with the runtime it had."""
        self.maintenance.pop(device_id, None)
        runtime = self.runtimes.get(device_id)
        if runtime is not None:
            await self._start_device(device_id, runtime)
        log.warning("room %s: %s resumed", self.id, device_id)
        self._publish_device(device_id)

    async def replace_device(
        self, device_id: str, runtime: DeviceRuntime, source: ProfileFile | None = None
    ) -> None:
        """Hot-swap a paused (or broken) device's runtime: same desired state, state re-read."""
        old = self.runtimes.get(device_id)
        self.runtimes[device_id] = runtime
        if source is not None:
            self.profile_files[device_id] = source
        if old is not None and old is not runtime:
            await old.stop()  # fails whatever was queued on it while it was paused
        if self.broken.pop(device_id, None) is not None:
            stored = await self.store.desired()
            if stored.get(device_id):
                self.desired[device_id] = dict(stored[device_id])
        self.maintenance.pop(device_id, None)
        await self._start_device(device_id, runtime)
        log.warning("room %s: %s now runs %s", self.id, device_id, runtime.profile.id)
        self._publish_device(device_id)
        self._publish_status()

    def _publish_device(self, device_id: str) -> None:
        if device_id in self.runtimes:
            self.bus.publish("device", self.device_snapshot(device_id))

    async def stop(self) -> None:
        """Stop reconciling and driving devices; flush usage counters."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for reconciler in self.reconcilers.values():
            await reconciler.stop()
        for runtime in self.runtimes.values():
            await runtime.stop()
        await self.store.add_counters(self._usage_since_mark())

    # --- intents ----------------------------------------------------------------------------

    async def apply(
        self,
        patch: Mapping[str, Mapping[str, Any]],
        *,
        who: str,
        actor: str | None = None,
        action: str = "desired.patch",
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Check, store and reconcile a desired-state change; latest intent wins."""
        if who not in WHO:
            raise ValueError(f"unknown origin {who!r}")
        try:
            normalized = self.validate(patch)
        except NotSupportedError as exc:
            # A refused intent is audited too: who asked for what, and why it was refused.
            refused = await self.store.audit(
                who, actor, action, detail or {"desired": _jsonable(patch)}, f"refused: {exc}"
            )
            self.bus.publish("audit", refused.as_dict())
            raise
        changes: dict[str, dict[str, Value | None]] = {d: dict(c) for d, c in normalized.items()}
        for device, caps in normalized.items():
            if caps.get("power") in RESTING:
                # Blank and freeze belong to the class that set them, not to the next one.
                for capability in SESSION_CAPABILITIES:
                    if capability in self.desired.get(device, {}) and capability not in caps:
                        changes[device][capability] = None
        entry = await self.store.record_intent(
            who, actor, action, detail or {"desired": _jsonable(normalized)}, changes
        )
        self._open_intents.append(entry.id)
        for device, updates in changes.items():
            current = self.desired.setdefault(device, {})
            for capability, value in updates.items():
                if value is None:
                    current.pop(capability, None)
                else:
                    current[capability] = value
            reconciler = self.reconcilers.get(device)
            if reconciler is None or device in self.maintenance:
                continue  # paused: its next runtime reconciles toward this
            for capability in updates:
                reconciler.forget_failure(capability)
            reconciler.evaluate()  # at once: the answer to this request already says pending
        self.bus.publish("audit", entry.as_dict())
        self._publish_status()
        log.info("room %s: %s by %s%s", self.id, action, who, f" ({actor})" if actor else "")
        return entry

    def validate(self, patch: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Value]]:
        """The patch with values in their typed form; `NotSupportedError` names what is wrong."""
        result: dict[str, dict[str, Value]] = {}
        for device_id, caps in patch.items():
            runtime = self.runtimes.get(device_id)
            if runtime is None:
                why = self.broken.get(device_id)
                raise UnknownError(
                    f"no device {device_id!r}" + (f" (not started: {why})" if why else "")
                )
            if not isinstance(caps, Mapping):
                raise NotSupportedError(f"{device_id}: want {{capability: value}}")
            for capability, value in caps.items():
                cap = runtime.compiled.capability(capability)
                if not cap.settable:
                    raise NotSupportedError(f"{device_id}.{capability} is read-only")
                try:
                    typed = runtime.compiled.normalize(cap, value)
                except NotSupportedError as exc:
                    raise NotSupportedError(f"{device_id}.{exc}") from None
                if isinstance(typed, dict):
                    previous = result.get(device_id, {}).get(capability)
                    base = dict(previous) if isinstance(previous, dict) else {}
                    current = self.desired.get(device_id, {}).get(capability)
                    if isinstance(current, dict) and not base:
                        base = dict(current)
                    typed = {**base, **typed}
                result.setdefault(device_id, {})[capability] = typed
        return result

    async def activate_scene(
        self, scene_id: str, *, who: str, actor: str | None = None
    ) -> AuditEntry:
        """Apply a scene (and the source it names)."""
        scene = self.config.scenes.get(scene_id)
        if scene is None:
            raise UnknownError(f"no scene {scene_id!r} (scenes: {', '.join(self.config.scenes)})")
        patch: dict[str, dict[str, Any]] = {}
        if scene.source is not None:
            _merge(patch, self.config.sources[scene.source].desired)
        _merge(patch, scene.desired)
        patch, skipped = self._without_broken(patch)
        detail: dict[str, Any] = {"scene": scene_id}
        if skipped:
            detail["skipped"] = skipped
        entry = await self.apply(
            patch, who=who, actor=actor, action="scene.activate", detail=detail
        )
        if scene.source is not None:
            await self._set_source(scene.source)
        return entry

    async def select_source(
        self, source_id: str, *, who: str, actor: str | None = None
    ) -> AuditEntry:
        """Show a source: route the switcher, set the projector's input..."""
        source = self.config.sources.get(source_id)
        if source is None:
            raise UnknownError(
                f"no source {source_id!r} (sources: {', '.join(self.config.sources)})"
            )
        patch, skipped = self._without_broken(source.desired)
        detail: dict[str, Any] = {"source": source_id}
        if skipped:
            detail["skipped"] = skipped
        entry = await self.apply(patch, who=who, actor=actor, action="source.select", detail=detail)
        await self._set_source(source_id)
        return entry

    def _without_broken(
        self, patch: Mapping[str, Mapping[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """A scene still runs when one of its devices could not be started: the rest obey."""
        kept = {d: dict(c) for d, c in patch.items() if d in self.runtimes}
        skipped = {d: self.broken.get(d, "not started") for d in patch if d not in self.runtimes}
        for device, why in skipped.items():
            log.warning("room %s: %s skipped: %s", self.id, device, why)
        return kept, skipped

    async def _set_source(self, source_id: str) -> None:
        await self.store.add_counters(self._usage_since_mark())
        await self.store.set_meta("source", source_id)
        self.source = source_id
        self.bus.publish("room", {"source": source_id})

    async def device_action(
        self,
        device_id: str,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        who: str,
        actor: str | None = None,
    ) -> AuditEntry:
        """Run a one-shot action (volume step, dial, camera preset) and audit its result."""
        runtime = self.runtimes.get(device_id)
        if runtime is None:
            raise UnknownError(f"no device {device_id!r}")
        if action not in runtime.compiled.actions:
            known = ", ".join(runtime.compiled.actions) or "none"
            raise UnknownError(f"{device_id}: no action {action!r} (actions: {known})")
        if device_id in self.maintenance:
            raise DeviceBusyError(f"{device_id}: {self.maintenance[device_id]}; try again soon")
        detail = {"device": device_id, "action": action, "params": dict(params or {})}
        entry = await self.store.audit(who, actor, "device.action", detail, "running")
        try:
            # Looked up again: the device's runtime may have been swapped meanwhile.
            await self.runtimes[device_id].action(action, params)
        except TribuneError as exc:
            await self.store.set_result(entry.id, f"failed: {exc}")
            self.bus.publish("audit", {**entry.as_dict(), "result": f"failed: {exc}"})
            raise
        await self.store.set_result(entry.id, "done")
        self.bus.publish("audit", {**entry.as_dict(), "result": "done"})
        return entry

    # --- what the room looks like -----------------------------------------------------------

    @property
    def converged(self) -> bool:
        """Whether every device is where the room wants it."""
        return all(r.converged for r in self.reconcilers.values())

    def device_snapshot(self, device_id: str) -> dict[str, Any]:
        """One device as the API shows it."""
        runtime = self.runtimes.get(device_id)
        if runtime is None:
            raise UnknownError(f"no device {device_id!r}")
        health = runtime.health
        reconciler = self.reconcilers.get(device_id)
        return {
            "id": device_id,
            "profile": runtime.profile.id,
            "profile_version": runtime.profile.version,
            "maintenance": self.maintenance.get(device_id),
            "name": runtime.profile.name,
            "label": label.model_dump() if (label := self._label_of(device_id)) else None,
            "kind": str(runtime.profile.kind),
            "online": health.status is HealthStatus.ONLINE,
            "health": {
                "status": str(health.status),
                "since": health.since,
                "last_error": health.last_error,
                "last_error_at": health.last_error_at,
                "last_reply_at": health.last_reply_at,
                "latency_ms": health.latency_ms,
                "connection": str(health.connection),
            },
            "reported": {
                name: {"value": r.value, "at": r.at, "source": str(r.source)}
                for name, r in runtime.state.items()
            },
            "desired": _jsonable(self.desired.get(device_id, {})),
            "capabilities": sorted(runtime.compiled.capabilities),
            "actions": sorted(runtime.compiled.actions),
            "status": {
                name: s.state for name, s in (reconciler.status if reconciler else {}).items()
            },
            "reasons": {
                name: s.reason
                for name, s in (reconciler.status if reconciler else {}).items()
                if s.reason
            },
        }

    def _label_of(self, device_id: str) -> Any:
        device = self.config.devices.get(device_id)
        return device.name if device is not None else None

    def snapshot(self) -> dict[str, Any]:
        """The whole room as `GET /api/v1/room` shows it."""
        return {
            "id": self.id,
            "name": self.config.room.name,
            "language": self.config.room.language,
            "converged": self.converged,
            "source": self.source,
            "seq": self.bus.seq,
            "devices": {device_id: self.device_snapshot(device_id) for device_id in self.runtimes},
            "broken": dict(self.broken),
        }

    # --- events -----------------------------------------------------------------------------

    def _on_device_event(self, event: DeviceEvent) -> None:
        if event.kind == "notification":
            return
        if event.kind == "state" and event.reading is not None and event.capability:
            r = event.reading
            self._reported_queue.put_nowait(
                (event.device, event.capability, _jsonable(r.value), r.at, str(r.source))
            )
        self.bus.publish("device", self.device_snapshot(event.device))

    def _publish_status(self) -> None:
        converged = self.converged
        if converged != self._converged:
            self._converged = converged
            self.bus.publish("room", {"converged": converged})
        if converged and self._open_intents:
            # What came of them: the room reached what they asked (or a later intent's state).
            done, self._open_intents = self._open_intents, []
            task = asyncio.ensure_future(self._close_intents(done))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self.bus.publish(
            "status",
            {
                device_id: {n: s.as_dict() for n, s in r.status.items()}
                for device_id, r in self.reconcilers.items()
            },
        )

    async def _close_intents(self, ids: list[int]) -> None:
        for entry_id in ids:
            try:
                entry = await self.store.set_result(entry_id, "converged")
            except Exception:
                log.exception("could not record an intent's result")
                continue
            if entry is not None:
                self.bus.publish("audit", entry.as_dict())  # the hub hears what came of it

    async def _audit_failure(self, device: str, capability: str, value: Value, error: str) -> None:
        entry = await self.store.audit(
            "system",
            device,
            "device.failed",
            {"device": device, "capability": capability, "value": _jsonable(value)},
            f"failed: {error}",
        )
        self.bus.publish("audit", entry.as_dict())

    async def _persist_reported(self) -> None:
        while True:
            item = await self._reported_queue.get()
            try:
                await self.store.save_reported(*item)
            except Exception:
                log.exception("could not store a reported value")

    async def _count_usage(self) -> None:
        while True:
            await asyncio.sleep(USAGE_FLUSH_SECONDS)
            try:
                await self.store.add_counters(self._usage_since_mark())
            except Exception:
                log.exception("could not store usage counters")

    def _usage_since_mark(self) -> dict[str, float]:
        now = time.monotonic()
        elapsed, self._usage_mark = now - self._usage_mark, now
        amounts: dict[str, float] = {}
        for device_id, runtime in self.runtimes.items():
            power = runtime.state.get("power")
            if power is not None and power.value == "on":
                amounts[f"device.{device_id}.on_seconds"] = elapsed
        if self.source is not None:
            amounts[f"source.{self.source}.seconds"] = elapsed
        return amounts


def check_config_values(
    config: RoomConfig, loader: ProfileLoader
) -> list[tuple[tuple[str, ...], str]]:
    """Scene and source values the devices' profiles would refuse: (key path, reason) each.

    The config schema cannot know that `power = "of"` is a typo; the profile can.
    """
    compiled = {}
    problems: list[tuple[tuple[str, ...], str]] = []
    for device_id, device in config.devices.items():
        try:
            device_profile = loader.load(device.profile).profile
        except (ConfigError, TribuneError) as exc:
            problems.append((("devices", device_id, "profile"), str(exc)))
            continue
        try:
            check_port(device_profile, device.port)
        except ConfigError as exc:
            problems.append((("devices", device_id, "port"), str(exc)))
        try:
            # The device's options may name a capability's values (a relay's `on = "down"`).
            compiled[device_id] = CompiledProfile(device_profile, device.options)
        except (ConfigError, TribuneError) as exc:
            problems.append((("devices", device_id, "options"), str(exc)))
    tables = (("scenes", config.scenes), ("sources", config.sources))
    for kind, table in tables:
        for name, entry in table.items():
            for device_id, caps in entry.desired.items():
                profile = compiled.get(device_id)
                if profile is None:
                    continue
                for capability, value in caps.items():
                    where = (kind, name, "desired", device_id, capability)
                    try:
                        cap = profile.capability(capability)
                        if not cap.settable:
                            raise NotSupportedError(f"{capability} is read-only")
                        profile.normalize(cap, value)
                    except NotSupportedError as exc:
                        problems.append((where, str(exc)))
    return problems


def _merge(target: dict[str, dict[str, Any]], patch: Mapping[str, Mapping[str, Any]]) -> None:
    for device, caps in patch.items():
        target.setdefault(device, {}).update(caps)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
