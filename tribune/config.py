"""The room configuration (`room.toml`): devices, sources, scenes, schedules, validated at load.

Errors name file, line and key: `room.toml:14: devices.projector.profile: required field is
missing`. TOML has no line numbers in `tomllib`, so `_TomlLines` finds them by reading the text.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tribune.errors import ConfigError

ROOM_ID = r"^[a-z0-9][a-z0-9-]{0,31}/[a-z0-9][a-z0-9-]{0,31}$"
NAME = r"^[a-z0-9][a-z0-9-]{0,31}$"
LANGUAGES = ("az", "en", "ru")

Path_ = tuple[str | int, ...]


class Strict(BaseModel):
    """Base: unknown keys are errors, so a typo is caught at load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(Strict):
    """A label in the panel's three languages."""

    az: Annotated[str, Field(min_length=1)]
    en: Annotated[str, Field(min_length=1)]
    ru: Annotated[str, Field(min_length=1)]


class RoomSection(Strict):
    """Who this room is."""

    id: Annotated[str, Field(pattern=ROOM_ID, description="site/room, e.g. baku/room-1")]
    name: str
    language: Literal["az", "en", "ru"] = "az"
    timezone: str = "Asia/Baku"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Baku)") from None
        return value


class DeviceConfig(Strict):
    """One device: which profile drives it, on which port."""

    profile: Annotated[str, Field(min_length=1)]
    port: Annotated[str, Field(min_length=1)]
    name: Label | None = None
    line: dict[str, int | float | str | bool] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)
    password: str | None = None
    password_file: str | None = None
    poll: bool = True

    @model_validator(mode="after")
    def _one_password(self) -> DeviceConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give `password` or `password_file`, not both")
        return self

    @field_validator("line")
    @classmethod
    def _line_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = {"baudrate", "bytesize", "parity", "stopbits", "rtscts", "xonxoff"}
        for key in value:
            if key not in allowed:
                raise ValueError(f"unknown line setting {key!r} (use {', '.join(sorted(allowed))})")
        return value

    def read_password(self, base: Path) -> str | None:
        """The device password, from `password_file` (relative to the config) or inline."""
        if self.password_file is None:
            return self.password
        path = (base / self.password_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"password_file {path}: {exc.strerror}") from None


DesiredState = dict[str, dict[str, Any]]


class SourceConfig(Strict):
    """A source tile on the panel: what "show the laptop" means for the devices."""

    label: Label
    icon: str | None = None
    order: int = 0
    desired: DesiredState


class SceneConfig(Strict):
    """A named desired state: `class-start`, `class-end`."""

    label: Label
    desired: DesiredState = Field(default_factory=dict)
    source: str | None = None
    order: int = 0


class ScheduleConfig(Strict):
    """A local schedule entry: `when = "weekdays 22:00"`, `scene = "class-end"`."""

    id: Annotated[str, Field(pattern=NAME)]
    when: str
    scene: str
    grace_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 30
    enabled: bool = True


class ApiSection(Strict):
    """The local API and panel."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 8080
    # Extra Host names the service answers to (e.g. the lectern PC's name on the LAN).
    allowed_hosts: list[str] = Field(default_factory=list)


PIN_HASH = r"^pbkdf2-sha256\$[0-9]{4,7}\$[0-9a-f]{16,64}\$[0-9a-f]{64}$"


class PanelSection(Strict):
    """The touch panel: which devices its volume, mute, blank and freeze controls drive.

    Left out, each is derived from the devices' profiles when the service starts: volume and
    mute on the switcher (else the first device that has them), blank and freeze on every
    projector and display that can. An empty list hides the control.
    """

    volume: Annotated[str, Field(pattern=NAME)] | None = None
    mute: Annotated[str, Field(pattern=NAME)] | None = None
    blank: list[Annotated[str, Field(pattern=NAME)]] | None = None
    freeze: list[Annotated[str, Field(pattern=NAME)]] | None = None
    # The technician screen's PIN, hashed: `python -m tribune.api.pin` prints one. No PIN, no
    # technician screen on the panel (the technician token still works).
    technician_pin: Annotated[str, Field(pattern=PIN_HASH)] | None = None


class SyncSection(Strict):
    """The link to the hub: the MQTT broker this room dials out to, and its credentials.

    Files (`password_file`, `ca_file`, `cert_file`, `key_file`) are relative to the config.
    """

    broker: Annotated[str, Field(description="mqtts://host:8883 or mqtt://host:1883")]
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_max: Annotated[float, Field(ge=1, le=3600)] = 60.0
    # The outbox of events waiting for the broker: the oldest go first when a bound is passed.
    outbox_max_events: Annotated[int, Field(ge=10, le=10_000_000)] = 50_000
    outbox_max_age_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24 * 7
    # The retained room state is re-published at most this often (changes in between coalesce).
    state_min_interval: Annotated[float, Field(ge=0.05, le=600)] = 1.0
    lamp_hours_alert: Annotated[int, Field(ge=1)] = 3000
    # The hub's publisher key (Ed25519, PEM; `tribune hub publisher-key`): every hub command must
    # be signed with it. Without it commands are trusted to the broker's ACL and the room refuses
    # every profile push.
    hub_key_file: str | None = None

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        from urllib.parse import urlsplit

        url = urlsplit(value)
        if url.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker {value!r}: use mqtts://host:8883 or mqtt://host:1883")
        try:
            url.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"broker {value!r}: bad port") from None
        if not url.hostname or url.path not in ("", "/") or url.username or url.query:
            raise ValueError(f"broker {value!r}: want scheme://host[:port] and nothing else")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> SyncSection:
        if self.password_file is not None and self.username is None:
            raise ValueError("sync.password_file needs sync.username")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("sync: give cert_file and key_file together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("sync: ca_file/cert_file need an mqtts:// broker")
        return self

    @property
    def tls(self) -> bool:
        """Whether the link is TLS (`mqtts://`)."""
        return self.broker.startswith("mqtts://")

    @property
    def host(self) -> str:
        """The broker's host name."""
        from urllib.parse import urlsplit

        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        """The broker's port (8883 for mqtts, 1883 for mqtt by default)."""
        from urllib.parse import urlsplit

        return urlsplit(self.broker).port or (8883 if self.tls else 1883)

    def read_password(self, base: Path) -> str | None:
        """The broker password from `password_file` (relative to the config)."""
        if self.password_file is None:
            return None
        path = (base / self.password_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"sync.password_file {path}: {exc.strerror}") from None


# --- [buttons]: physical lectern keys (tribune/inputs, docs/buttons.md) ----------------------

INTENT_FORMS = "scene:ID, source:ID, action:DEVICE.ACTION or desired:DEVICE.CAPABILITY=VALUE"
LED_FORMS = "scene:ID, source:ID or power:DEVICE"
_WORD = r"^[A-Za-z0-9_]{1,64}$"


class KeyIntent(NamedTuple):
    """What a key asks of the room: `scene:class-start`, `action:board.volume_up`..."""

    kind: Literal["scene", "source", "action", "desired"]
    target: str  # the scene, source or device id
    name: str | None = None  # the action or capability
    value: str | None = None  # desired value; `toggle` flips on/off, `+5`/`-5` step a level

    def __str__(self) -> str:
        if self.kind in ("scene", "source"):
            return f"{self.kind}:{self.target}"
        if self.kind == "action":
            return f"action:{self.target}.{self.name}"
        return f"desired:{self.target}.{self.name}={self.value}"


def parse_intent(text: str) -> KeyIntent:
    """`scene:ID`, `source:ID`, `action:DEVICE.ACTION`, `desired:DEVICE.CAPABILITY=VALUE`."""
    kind, _, rest = text.partition(":")
    if kind in ("scene", "source") and re.match(NAME, rest):
        return KeyIntent("scene" if kind == "scene" else "source", rest)
    if kind == "action":
        device, _, action = rest.partition(".")
        if re.match(NAME, device) and re.match(_WORD, action):
            return KeyIntent("action", device, action)
    if kind == "desired":
        left, _, value = rest.partition("=")
        device, _, capability = left.partition(".")
        if re.match(NAME, device) and re.match(_WORD, capability) and value.strip():
            return KeyIntent("desired", device, capability, value.strip())
    raise ValueError(f"{text!r}: want {INTENT_FORMS}")


def parse_led_condition(text: str) -> tuple[Literal["scene", "source", "power"], str]:
    """`scene:ID` (the last scene activated), `source:ID` (shown now), `power:DEVICE` (on)."""
    kind, _, target = text.partition(":")
    if re.match(NAME, target):
        if kind == "scene":
            return "scene", target
        if kind == "source":
            return "source", target
        if kind == "power":
            return "power", target
    raise ValueError(f"{text!r}: want {LED_FORMS}")


def _event_code(name: str, prefixes: tuple[str, ...], what: str, shown_by: str) -> str:
    """A key or LED name checked against the kernel's (python-evdev's `ecodes`)."""
    try:
        from evdev import ecodes
    except ImportError:  # not Linux: the form only
        if re.match(r"^(" + "|".join(prefixes) + r")[A-Z0-9_]+$", name):
            return name
        raise ValueError(f"{name!r}: not a {what} name (e.g. {prefixes[0]}...)") from None
    known = [n for n in ecodes.ecodes if n.startswith(prefixes)]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {what} {name!r}{hint}; {shown_by}")
    return name


def _key_name(name: str) -> str:
    return _event_code(name, ("KEY_", "BTN_"), "key code", "`tribune buttons listen` shows keys")


def _led_name(name: str) -> str:
    return _event_code(name, ("LED_",), "LED", "`tribune buttons list` shows a keypad's LEDs")


KeyName = Annotated[str, AfterValidator(_key_name)]
LedName = Annotated[str, AfterValidator(_led_name)]


class KeyBinding(Strict):
    """What one key does. `KEY_F1 = "scene:class-start"` is short for `{ press = ... }`.

    `press` runs when the key goes down — or, if the key also has `long`, when it comes back
    up before `long_press` seconds; `long` runs once the key has been held that long;
    `repeat` runs `press` again while the key is held (volume up).
    """

    press: str | None = None
    long: str | None = None
    repeat: bool = False

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        return {"press": value} if isinstance(value, str) else value

    @field_validator("press", "long")
    @classmethod
    def _intent(cls, value: str | None) -> str | None:
        if value is not None:
            parse_intent(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KeyBinding:
        if self.press is None and self.long is None:
            raise ValueError("give `press`, `long` or both")
        if self.repeat and (self.press is None or self.long is not None):
            raise ValueError("`repeat` needs `press` and no `long` (a held key repeats)")
        return self


class KeypadConfig(Strict):
    """A keypad (or a button panel that presents itself as a keyboard) and its keys.

    Matched by `path` (a `/dev/input/by-id/...` link: stable across replugs), or by `name`
    and/or `vid_pid` as `tribune buttons list` shows them. Every event node of the matched
    device that can send one of the mapped keys is opened (keypads often have two).
    """

    path: str | None = None
    name: Annotated[str, Field(min_length=1)] | None = None
    vid_pid: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")] | None = None
    # Exclusive (EVIOCGRAB): the keys do not also type into the kiosk browser.
    grab: bool = True
    keys: Annotated[dict[KeyName, KeyBinding], Field(min_length=1)]
    # LED name -> when it is lit: `LED_NUML = "scene:class-start"`.
    leds: dict[LedName, str] = Field(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r}: want a full path, e.g. /dev/input/by-id/usb-...-kbd")
        return value

    @field_validator("leds")
    @classmethod
    def _conditions(cls, value: dict[str, str]) -> dict[str, str]:
        for condition in value.values():
            parse_led_condition(condition)
        return value

    @model_validator(mode="after")
    def _matched(self) -> KeypadConfig:
        if self.path is None and self.name is None and self.vid_pid is None:
            raise ValueError("give `path` (/dev/input/by-id/...), or `name` and/or `vid_pid`")
        if self.path is not None and (self.name is not None or self.vid_pid is not None):
            raise ValueError("give `path`, or `name`/`vid_pid`, not both")
        return self


class ButtonsSection(Strict):
    """Physical keys: timing shared by every keypad, and the keypads (see docs/buttons.md)."""

    long_press: Annotated[float, Field(ge=0.1, le=10)] = 0.8  # seconds held for `long`
    repeat_delay: Annotated[float, Field(ge=0.05, le=5)] = 0.5  # held this long, then repeats
    repeat_rate: Annotated[float, Field(gt=0, le=50)] = 5.0  # repeats per second
    debounce: Annotated[float, Field(ge=0, le=0.5)] = 0.03  # changes closer than this: bounce
    keypads: dict[Annotated[str, Field(pattern=NAME)], KeypadConfig] = Field(default_factory=dict)


def _button_references(config: RoomConfig) -> None:
    """The scenes, sources and devices keys and LEDs name exist (actions: `tribune.inputs`)."""
    for pad_name, pad in config.buttons.keypads.items():
        for key, binding in pad.keys.items():
            for when in ("press", "long"):
                text = getattr(binding, when)
                if text is not None:
                    intent = parse_intent(text)
                    where = f"buttons.keypads.{pad_name}.keys.{key}.{when}"
                    _check_target(config, where, intent.kind, intent.target)
        for led, condition in pad.leds.items():
            kind, target = parse_led_condition(condition)
            where = f"buttons.keypads.{pad_name}.leds.{led}"
            _check_target(config, where, "desired" if kind == "power" else kind, target)


def _check_target(config: RoomConfig, where: str, kind: str, target: str) -> None:
    table: dict[str, Any]
    if kind == "scene":
        table, what = dict(config.scenes), "scene"
    elif kind == "source":
        table, what = dict(config.sources), "source"
    else:
        table, what = dict(config.devices), "device"
    if target not in table:
        raise ValueError(f"{where}: no {what} {target!r} ({what}s: {', '.join(table) or 'none'})")


class RoomConfig(Strict):
    """The whole `room.toml`."""

    room: RoomSection
    devices: dict[str, DeviceConfig]
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    scenes: dict[str, SceneConfig] = Field(default_factory=dict)
    schedule: list[ScheduleConfig] = Field(default_factory=list)
    api: ApiSection = Field(default_factory=ApiSection)
    panel: PanelSection = Field(default_factory=PanelSection)
    # Physical keys on the lectern: keypads and what their keys do (docs/buttons.md).
    buttons: ButtonsSection = Field(default_factory=ButtonsSection)
    # The hub link; absent (or an empty table) means the room runs on its own.
    sync: SyncSection | None = None

    @field_validator("sync", mode="before")
    @classmethod
    def _empty_sync(cls, value: Any) -> Any:
        return None if value == {} else value

    @field_validator("devices", "sources", "scenes")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.match(NAME, name):
                raise ValueError(f"name {name!r}: use lower-case letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _references(self) -> RoomConfig:
        for kind, table in (("sources", self.sources), ("scenes", self.scenes)):
            for name, entry in table.items():
                for device in entry.desired:
                    if device not in self.devices:
                        raise ValueError(
                            f"{kind}.{name}.desired: no device {device!r} "
                            f"(devices: {', '.join(self.devices)})"
                        )
        for name, scene in self.scenes.items():
            if scene.source is not None and scene.source not in self.sources:
                raise ValueError(f"scenes.{name}.source: no source {scene.source!r}")
        seen: set[str] = set()
        for i, timer in enumerate(self.schedule):
            if timer.scene not in self.scenes:
                raise ValueError(f"schedule.{i}.scene: no scene {timer.scene!r}")
            if timer.id in seen:
                raise ValueError(f"schedule.{i}.id: {timer.id!r} is used twice")
            seen.add(timer.id)
        return self

    @model_validator(mode="after")
    def _buttons_references(self) -> RoomConfig:
        _button_references(self)
        return self

    @model_validator(mode="after")
    def _panel_references(self) -> RoomConfig:
        panel = self.panel
        named = [("volume", panel.volume), ("mute", panel.mute)]
        named += [("blank", d) for d in panel.blank or []]
        named += [("freeze", d) for d in panel.freeze or []]
        for key, device in named:
            if device is not None and device not in self.devices:
                raise ValueError(
                    f"panel.{key}: no device {device!r} (devices: {', '.join(self.devices)})"
                )
        return self


class _TomlLines:
    """Line numbers of TOML keys, found by reading the text (tables, arrays of tables, keys)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[Path_, int] = {}
        table: Path_ = ()
        counters: dict[Path_, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                parts: Path_ = tuple(_split_key(header.group(2)))
                if header.group(1) == "[[":
                    index = counters.get(parts, 0)
                    counters[parts] = index + 1
                    parts = (*parts, index)
                table = parts
                self._add(table, number)
                continue
            key = self._KEY.match(line)
            if key:
                self._add((*table, *_split_key(key.group(1))), number)

    def _add(self, path: Path_, number: int) -> None:
        # `[devices.board]` is also where `devices` first appears: a mistake there is named.
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], number)

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor."""
        for end in range(len(path), 0, -1):
            if (found := self.lines.get(tuple(path[:end]))) is not None:
                return found
        return None


def _split_key(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def _describe(error: Any, root: type[BaseModel]) -> str:
    loc: Path_ = tuple(error["loc"])
    field = ".".join(str(p) for p in loc if p != "[key]") or "(top)"  # [key]: a dict key
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown key{_hint(loc, root)}"
    if error["type"] == "missing":
        return f"{field}: required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"


def _hint(loc: Path_, root: type[BaseModel]) -> str:
    model: Any = root
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", {})
        if part in fields:
            model = _inner_model(fields[part].annotation)
        elif isinstance(part, str | int) and model is not None and not fields:
            continue
    known = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (inner := _inner_model(arg)) is not None:
            return inner
    return None


M = TypeVar("M", bound=BaseModel)


def parse_config(text: str, source: str) -> RoomConfig:
    """Parse and validate a room config text; `source` names it in errors."""
    config = parse_toml(RoomConfig, text, source)
    _check_schedules(config, _TomlLines(text), source)
    return config


MAX_CONFIG_CHARS = 1024 * 1024
MAX_CONFIG_DEPTH = 16  # the examples nest 5 deep (scenes.X.desired.switcher.route)
MAX_CONFIG_INT = 2**63


def parse_toml(model: type[M], text: str, source: str) -> M:
    """TOML `text` validated as `model`; a `ConfigError` naming `source`, line and key."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(
            f"{len(text)} characters; at most {MAX_CONFIG_CHARS}", path=source, line=1
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else text.count("\n") + 1  # "at end of document"
        raise ConfigError(f"TOML syntax: {exc}", path=source, line=line) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        line = _nesting_line(text, MAX_CONFIG_DEPTH)
        raise ConfigError(
            f"nested deeper than {MAX_CONFIG_DEPTH} levels", path=source, line=line
        ) from None
    except ValueError as exc:  # a whole number past Python's 4300-digit conversion limit
        found = re.search(r"[0-9_]{4300,}", text)
        line = text.count("\n", 0, found.start()) + 1 if found else 1
        raise ConfigError(f"number too large: {exc}", path=source, line=line) from None
    lines = _TomlLines(text)
    _check_shape(data, lines, source)
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        loc = tuple(first["loc"])
        message = _describe(first, model)
        # A cross-reference error names its own path in the message: find that line.
        ref = re.match(r"^(?:Value error, )?([a-z_]+\.[\w.\-]+):", str(first["msg"]))
        if ref and not loc:
            loc = tuple(int(p) if p.isdigit() else p for p in ref.group(1).split("."))
            message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(message + more, path=source, line=lines.line_of(loc)) from None
    return config


def _check_shape(data: dict[str, Any], lines: _TomlLines, source: str) -> None:
    """Refuse nesting deeper than `MAX_CONFIG_DEPTH` and whole numbers beyond 64 bits."""
    stack: list[tuple[Path_, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        where = ".".join(map(str, path))
        if len(path) > MAX_CONFIG_DEPTH:
            raise ConfigError(
                f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels",
                path=source,
                line=lines.line_of(path) or 1,
            )
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
        elif (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_CONFIG_INT
        ):
            raise ConfigError(
                f"{where}: number too large (at most 64 bits)",
                path=source,
                line=lines.line_of(path) or 1,
            )


def _nesting_line(text: str, limit: int) -> int:
    """The line where brackets first nest deeper than `limit` (strings and comments are not
    skipped: this only places an error tomllib could not)."""
    depth = 0
    for at, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > limit:
                return text.count("\n", 0, at) + 1
        elif char in "]}":
            depth = max(0, depth - 1)
    return 1


def _check_schedules(config: RoomConfig, lines: _TomlLines, source: str) -> None:
    from tribune.scheduler import parse_when

    for i, entry in enumerate(config.schedule):
        try:
            parse_when(entry.when)
        except ValueError as exc:
            raise ConfigError(
                f"schedule.{i}.when: {exc}",
                path=source,
                line=lines.line_of(("schedule", i, "when")),
            ) from None


def line_of(text: str, path: Path_) -> int | None:
    """The line of a key path (`("scenes", "class-start", "desired")`) in a config text."""
    return _TomlLines(text).line_of(path)


def read_config_text(path: Path) -> str:
    """A config file's text; `ConfigError` naming the file (and the line of a non-UTF-8 byte)."""
    try:
        data = path.read_bytes()
        return data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError("not UTF-8 text", path=str(path), line=line) from None


def load_config(path: Path) -> RoomConfig:
    """Read and validate a `room.toml`."""
    return parse_config(read_config_text(path), str(path))
