"""The key service: lectern keypads drive the room, like the touch panel does.

It watches the input folder, opens every node of a configured keypad that can send a mapped
key (grabbing it, so keys do not type into the kiosk browser), and turns key presses into room
intents through the room's own API — validated, stored and audited with who = "button" and
actor = "KEYPAD:KEY" (`desk:KEY_F1`). A refused intent is audited and logged; nothing a key
does, and no keypad going wrong, stops the service or the other keypads.

An unplugged keypad is noticed by its read failing; its return by the folder watcher (inotify),
with a few follow-up scans while udev adds the by-id link and sets the node's group, and a scan
every `SCAN_SECONDS` as a safety net. LEDs follow the room (bus events) and are written again
at every safety scan, because a desktop may reset lock-key LEDs on every keyboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from tribune.config import (
    ButtonsSection,
    KeyBinding,
    KeyIntent,
    KeypadConfig,
    parse_intent,
    parse_led_condition,
)
from tribune.errors import TribuneError
from tribune.inputs.check import intent_problem, is_step
from tribune.inputs.codes import code_of
from tribune.inputs.keys import KeyTiming, KeyTracker, Trigger
from tribune.inputs.source import (
    EV_KEY,
    InputDeviceGoneError,
    InputDeviceInfo,
    InputHandle,
    InputSource,
)
from tribune.profiles.schema import ValueType
from tribune.room import Room
from tribune.store import AuditEntry

log = logging.getLogger(__name__)

WHO = "button"
SCAN_SECONDS = 5.0
# After a change in the folder: udev adds the by-id link and the node's group a moment later.
SETTLE_SCANS = (0.3, 1.0)
RETRY_AFTER_ERROR = 1.0
# Scenes looked for in the audit log when the service starts (for `scene:` LEDs).
LAST_SCENE_LOOKBACK = 500
POWER_LIT = ("on", "warming")


@dataclass(frozen=True)
class Keypad:
    """A `[buttons.keypads.NAME]` entry with key and LED names turned into codes."""

    name: str
    config: KeypadConfig
    bindings: dict[int, KeyBinding]
    key_names: dict[int, str]
    leds: dict[int, tuple[str, str]]  # LED code -> (scene|source|power, target)

    @classmethod
    def of(cls, name: str, config: KeypadConfig) -> Keypad:
        """Compile one keypad's config."""
        codes = {code_of(key): key for key in config.keys}
        return cls(
            name,
            config,
            bindings={code: config.keys[key] for code, key in codes.items()},
            key_names=codes,
            leds={code_of(led): parse_led_condition(c) for led, c in config.leds.items()},
        )

    def matches(self, info: InputDeviceInfo) -> bool:
        """Whether a device is this keypad (by path or link; else by name and/or vid:pid)."""
        c = self.config
        if c.path is not None:
            return info.known_as(c.path)
        if c.name is not None and info.name != c.name:
            return False
        return c.vid_pid is None or info.ids == c.vid_pid.lower()

    def wants(self, info: InputDeviceInfo) -> bool:
        """Whether this node of the keypad can send a mapped key (a keypad's mouse part not)."""
        return bool(info.keys & self.bindings.keys())


@dataclass(eq=False)
class _Open:
    """A keypad node we hold open."""

    keypad: Keypad
    handle: InputHandle
    tracker: KeyTracker
    task: asyncio.Task[None] | None = None
    leds: dict[int, bool] = field(default_factory=dict)  # what we last wrote

    @property
    def path(self) -> str:
        """Its node, `/dev/input/eventN`."""
        return self.handle.info.path


class KeyService:
    """Every configured keypad of one room."""

    def __init__(
        self,
        room: Room,
        config: ButtonsSection,
        source: InputSource | None = None,
    ) -> None:
        """`source`: where input devices come from (default: `/dev/input` through evdev)."""
        if source is None:
            from tribune.inputs.evdev_source import EvdevSource

            source = EvdevSource()
        self.room = room
        self.source = source
        self.timing = KeyTiming.of(config)
        self.keypads = [Keypad.of(name, pad) for name, pad in config.keypads.items()]
        self.open: dict[str, _Open] = {}  # node path -> open keypad node
        self.last_scene: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._intents: set[asyncio.Task[None]] = set()
        self._in_flight: set[tuple[str, int]] = set()  # (keypad, key) running an intent
        self._scan_wanted = asyncio.Event()
        self._reported: dict[str, str] = {}  # node -> problem already logged
        self._retry_at: dict[str, float] = {}  # node -> not before (after an error)
        self._timers: list[asyncio.TimerHandle] = []

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Find the keypads and follow the room; returns at once (keypads come and go)."""
        for problem in self.check_bindings():
            log.warning("buttons: %s", problem)
        self.last_scene = await self._find_last_scene()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch(), name="buttons-watch"),
            loop.create_task(self._scan_loop(), name="buttons-scan"),
            loop.create_task(self._follow_room(), name="buttons-leds"),
        ]
        log.info("buttons: %d keypads configured", len(self.keypads))

    async def stop(self) -> None:
        """Close every keypad (ending its grab) and stop watching."""
        for timer in self._timers:
            timer.cancel()
        tasks = [*self._tasks, *(o.task for o in self.open.values() if o.task is not None)]
        tasks += list(self._intents)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for node in list(self.open.values()):
            self._close(node)
        self.open.clear()

    def check_bindings(self) -> list[str]:
        """Actions and desired values the devices' profiles would refuse (or broken devices)."""
        problems = []
        for keypad in self.keypads:
            for code, binding in keypad.bindings.items():
                for when in ("press", "long"):
                    text = getattr(binding, when)
                    if text is None:
                        continue
                    where = f"keypads.{keypad.name}.keys.{keypad.key_names[code]}.{when}"
                    reason = self._refusal(parse_intent(text), checking=True)
                    if reason is not None:
                        problems.append(f"{where}: {reason}")
        return problems

    # --- finding keypads --------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            try:
                async for _ in self.source.changes():
                    self._want_scan(settle=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("buttons: watching %s failed; retrying", self.source.folder)
            await asyncio.sleep(SCAN_SECONDS)

    def _want_scan(self, *, settle: bool = False) -> None:
        self._scan_wanted.set()
        if settle:
            loop = asyncio.get_running_loop()
            self._timers = [t for t in self._timers if not t.cancelled()]
            self._timers += [loop.call_later(d, self._scan_wanted.set) for d in SETTLE_SCANS]

    async def _scan_loop(self) -> None:
        self._scan_wanted.set()
        while True:
            safety = False
            try:
                await asyncio.wait_for(self._scan_wanted.wait(), SCAN_SECONDS)
            except TimeoutError:
                safety = True
            self._scan_wanted.clear()
            try:
                await self.scan()
                if safety:
                    self._update_leds(force=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("buttons: scanning %s failed", self.source.folder)

    async def scan(self) -> None:
        """Open every configured keypad node that is present and not open yet."""
        devices = await self.source.devices()
        now = asyncio.get_running_loop().time()
        present = {info.path for info in devices}
        for path in list(self._reported):
            if path not in present:
                del self._reported[path]
        for info in devices:
            if info.path in self.open or self._retry_at.get(info.path, 0.0) > now:
                continue
            keypad = next((k for k in self.keypads if k.matches(info)), None)
            if keypad is None:
                continue
            if info.error is not None:
                hint = " (see systemd/60-tribune-input.rules)"
                self._report(info.path, f"keypad {keypad.name}: {info.path}: {info.error}{hint}")
                continue
            if not keypad.wants(info):
                continue
            await self._open(keypad, info)

    def _report(self, path: str, message: str) -> None:
        """Log a keypad problem once (until it changes or the node goes away)."""
        if self._reported.get(path) != message:
            self._reported[path] = message
            log.error("buttons: %s", message)

    async def _open(self, keypad: Keypad, info: InputDeviceInfo) -> None:
        try:
            handle = await self.source.open(info.path)
        except TribuneError as exc:
            self._report(info.path, f"keypad {keypad.name}: {exc}")
            self._retry_at[info.path] = asyncio.get_running_loop().time() + RETRY_AFTER_ERROR
            return
        path = handle.info.path
        self._reported.pop(path, None)
        self._retry_at.pop(path, None)
        if keypad.config.grab:
            try:
                handle.grab()
            except OSError as exc:
                # Still read it: the keys also reach whoever holds the grab, but they work.
                log.error(
                    "buttons: keypad %s: %s: cannot grab it (%s): is another program using it?",
                    keypad.name,
                    path,
                    exc.strerror,
                )

        def fire(code: int, trigger: Trigger) -> None:
            self._fire(keypad, code, trigger)

        node = _Open(keypad, handle, KeyTracker(keypad.bindings, self.timing, fire))
        self.open[path] = node
        node.task = asyncio.get_running_loop().create_task(
            self._read(node), name=f"buttons-{keypad.name}"
        )
        self._set_leds(node, force=True)
        log.warning(
            "buttons: keypad %s: %s (%s, %s)%s",
            keypad.name,
            path,
            handle.info.name,
            handle.info.ids,
            ", grabbed" if keypad.config.grab else "",
        )

    async def _read(self, node: _Open) -> None:
        try:
            async for event in node.handle.events():
                if event.type == EV_KEY:
                    node.tracker.feed(event.code, event.value)
        except InputDeviceGoneError as exc:
            log.warning("buttons: keypad %s: %s", node.keypad.name, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("buttons: keypad %s: %s failed", node.keypad.name, node.path)
            self._retry_at[node.path] = asyncio.get_running_loop().time() + RETRY_AFTER_ERROR
        if self.open.get(node.path) is node:
            del self.open[node.path]
            self._close(node)
            self._want_scan(settle=True)  # it may be back already (a quick replug)

    def _close(self, node: _Open) -> None:
        node.tracker.reset()
        try:
            node.handle.close()
        except Exception:  # closing a vanished device must not stop the others
            log.debug("buttons: closing %s", node.path, exc_info=True)

    # --- keys -> intents --------------------------------------------------------------------

    def _fire(self, keypad: Keypad, code: int, trigger: Trigger) -> None:
        binding = keypad.bindings[code]
        text = binding.long if trigger == "long" else binding.press
        if text is None:
            return
        busy = (keypad.name, code)
        if trigger == "repeat" and busy in self._in_flight:
            # The device has not answered the last step yet: skipping keeps a held key from
            # queueing steps that would still run after it is released.
            log.debug("buttons: %s:%s repeat skipped (busy)", keypad.name, keypad.key_names[code])
            return
        actor = f"{keypad.name}:{keypad.key_names[code]}"
        self._in_flight.add(busy)
        task = asyncio.get_running_loop().create_task(self._run(parse_intent(text), actor))
        self._intents.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._intents.discard(task)
            self._in_flight.discard(busy)

        task.add_done_callback(done)

    async def _run(self, intent: KeyIntent, actor: str) -> None:
        """Run one key's intent through the room; never raises (every outcome is audited)."""
        room = self.room
        try:
            reason = self._refusal(intent)
            if reason is not None:
                await self._audit_refusal(intent, actor, reason)
                return
            if intent.kind == "scene":
                await room.activate_scene(intent.target, who=WHO, actor=actor)
            elif intent.kind == "source":
                await room.select_source(intent.target, who=WHO, actor=actor)
            elif intent.kind == "action":
                assert intent.name is not None
                await room.device_action(intent.target, intent.name, who=WHO, actor=actor)
            else:
                assert intent.name is not None
                value = self._desired_value(intent)
                await room.apply({intent.target: {intent.name: value}}, who=WHO, actor=actor)
        except TribuneError as exc:
            # The room audited it (refused or failed); the key service only logs it.
            log.warning("buttons: %s: %s: %s", actor, intent, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("buttons: %s: %s", actor, intent)

    def _refusal(self, intent: KeyIntent, *, checking: bool = False) -> str | None:
        """Why the room would refuse this before auditing it itself, or None."""
        room = self.room
        if intent.kind == "scene":
            return None if intent.target in room.config.scenes else f"no scene {intent.target!r}"
        if intent.kind == "source":
            known = intent.target in room.config.sources
            return None if known else f"no source {intent.target!r}"
        runtime = room.runtimes.get(intent.target)
        if runtime is None:
            why = room.broken.get(intent.target, "not configured")
            return f"device {intent.target!r} is not running ({why})"
        if intent.kind == "action" or checking:
            # Desired values are refused (and audited) by the room itself at run time.
            problem = intent_problem(str(intent), {intent.target: runtime.compiled})
            if problem is not None:
                return problem
        if intent.kind == "action" and intent.target in room.maintenance and not checking:
            return f"{intent.target}: {room.maintenance[intent.target]}"
        return None

    def _desired_value(self, intent: KeyIntent) -> Any:
        """The value to ask for: `toggle` flips, `+5`/`-5` steps, from what is desired (else
        what is reported: the room may not have asked for anything yet)."""
        if intent.value != "toggle" and not is_step(intent.value):
            return intent.value
        assert intent.name is not None
        assert intent.value is not None
        runtime = self.room.runtimes[intent.target]
        current = self.room.desired.get(intent.target, {}).get(intent.name)
        if current is None:
            reading = runtime.state.get(intent.name)
            current = reading.value if reading is not None else None
        if intent.value == "toggle":
            return not bool(current)
        base = current if isinstance(current, int) and not isinstance(current, bool) else 0
        stepped = base + int(intent.value)
        if runtime.compiled.capability(intent.name).type is ValueType.LEVEL:
            stepped = min(max(stepped, 0), 100)  # held at the end of the scale, not refused
        return stepped

    async def _audit_refusal(self, intent: KeyIntent, actor: str, reason: str) -> None:
        action = {
            "scene": "scene.activate",
            "source": "source.select",
            "action": "device.action",
        }.get(intent.kind, "desired.patch")
        entry: AuditEntry = await self.room.store.audit(
            WHO, actor, action, {"intent": str(intent)}, f"refused: {reason}"
        )
        self.room.bus.publish("audit", entry.as_dict())
        log.warning("buttons: %s: %s refused: %s", actor, intent, reason)

    # --- LEDs -------------------------------------------------------------------------------

    async def _find_last_scene(self) -> str | None:
        for entry in await self.room.store.audit_tail(LAST_SCENE_LOOKBACK):
            if entry.action == "scene.activate" and not entry.result.startswith("refused"):
                scene = entry.detail.get("scene")
                return scene if isinstance(scene, str) else None
        return None

    async def _follow_room(self) -> None:
        subscription = self.room.bus.subscribe()
        try:
            while True:
                event = await subscription.queue.get()
                if subscription.lagged:
                    subscription.lagged = False
                    self.last_scene = await self._find_last_scene()
                data = event.data
                if (
                    event.kind == "audit"
                    and data.get("action") == "scene.activate"
                    and not str(data.get("result", "")).startswith("refused")
                    and isinstance(data.get("detail", {}).get("scene"), str)
                ):
                    self.last_scene = data["detail"]["scene"]
                self._update_leds()
        finally:
            self.room.bus.unsubscribe(subscription)

    def lit(self, condition: tuple[str, str]) -> bool:
        """Whether an LED condition holds now."""
        kind, target = condition
        if kind == "scene":
            return self.last_scene == target
        if kind == "source":
            return self.room.source == target
        runtime = self.room.runtimes.get(target)
        reading = runtime.state.get("power") if runtime is not None else None
        return reading is not None and reading.value in POWER_LIT

    def _update_leds(self, *, force: bool = False) -> None:
        for node in list(self.open.values()):
            self._set_leds(node, force=force)

    def _set_leds(self, node: _Open, *, force: bool = False) -> None:
        for code, condition in node.keypad.leds.items():
            if code not in node.handle.info.leds:
                continue  # the other node of the keypad has it
            on = self.lit(condition)
            if not force and node.leds.get(code) is on:
                continue
            try:
                node.handle.set_led(code, on)
                node.leds[code] = on
            except InputDeviceGoneError:
                return  # unplugged: its reader says so and closes it
            except TribuneError as exc:
                self._report(node.path, f"keypad {node.keypad.name}: LED: {exc}")
                return
