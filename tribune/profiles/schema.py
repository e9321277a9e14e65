"""The device profile schema: what a profile YAML file may say, checked at load time.

A profile maps standard capabilities (power, input, volume...) to commands and reply patterns for
one device family. Text codecs write commands as text (`"%1POWR {value}"`) and replies as regular
expressions; the binary codec writes both as hex byte templates (`"AA 11 {id} 01 {value}"`).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PROFILE_ID = r"^[a-z0-9][a-z0-9-]{0,63}$"
CAPABILITY_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class Strict(BaseModel):
    """Base for profile models: unknown fields are errors, so a misspelt field is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceKind(StrEnum):
    """What sort of device a profile drives."""

    PROJECTOR = "projector"
    DISPLAY = "display"
    BOARD = "board"
    SWITCHER = "switcher"
    CODEC = "codec"
    RELAY = "relay"
    AUDIO = "audio"


class ValueType(StrEnum):
    """The type of a capability's value."""

    POWER = "power"  # off | on | warming | cooling | standby
    ENUM = "enum"  # one of the names declared by the profile
    BOOL = "bool"  # on | off
    LEVEL = "level"  # 0..100, scaled to the device's range
    INT = "int"
    TEXT = "text"
    ROUTE = "route"  # switcher: output -> input


POWER_STATES = ("off", "on", "warming", "cooling", "standby")

# The standard capabilities and their types; a profile may add others with an explicit `type`.
STANDARD_CAPABILITIES: dict[str, ValueType] = {
    "power": ValueType.POWER,
    "input": ValueType.ENUM,
    "volume": ValueType.LEVEL,
    "mute": ValueType.BOOL,
    "video_mute": ValueType.BOOL,
    "freeze": ValueType.BOOL,
    "route": ValueType.ROUTE,
    "lamp_hours": ValueType.INT,
    "filter_hours": ValueType.INT,
    "errors": ValueType.TEXT,
    "model": ValueType.TEXT,
    "serial": ValueType.TEXT,
    "firmware": ValueType.TEXT,
    "call": ValueType.ENUM,
    "mic_mute": ValueType.BOOL,
}

READ_ONLY_TYPES = frozenset({ValueType.TEXT})

# Codecs whose templates are hex bytes rather than text: `binary`, and `usb` (control transfers).
HEX_CODECS = frozenset({"binary", "usb"})


class SerialSettings(Strict):
    """Line settings of a serial port; per-device overrides merge over these."""

    baudrate: Annotated[int, Field(gt=0, le=4_000_000)] = 9600
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Annotated[float, Field()] = 1

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("must be 1, 1.5 or 2")
        return value

    rtscts: bool = False
    xonxoff: bool = False


class LinkSettings(Strict):
    """How to reach the device: serial line settings, TCP port, session handshake."""

    serial: SerialSettings | None = None
    tcp_port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    # A session handshake run after connecting over TCP (Epson ESC/VP.net).
    tcp_handshake: Literal["escvpnet"] | None = None
    # Bytes written after opening the link to wake the device's command parser (Epson serial).
    wakeup: str | None = None


class Timing(Strict):
    """Per-device timing, in seconds."""

    gap: Annotated[float, Field(ge=0, le=10)] = 0.05
    reply_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    warmup: Annotated[float, Field(ge=0, le=900)] = 0
    cooldown: Annotated[float, Field(ge=0, le=900)] = 0
    busy_retry_delay: Annotated[float, Field(gt=0, le=60)] = 1.0
    busy_max_wait: Annotated[float, Field(gt=0, le=900)] = 120
    # Reconnect backoff while a device is unreachable: first delay and cap.
    reconnect_min: Annotated[float, Field(gt=0, le=60)] = 0.5
    # The cap is low on purpose: a device that returns is seen again within 5 s.
    reconnect_max: Annotated[float, Field(gt=0, le=5)] = 3.0


class Command(Strict):
    """One request and the reply that acknowledges it.

    `reply` is a regular expression over the reply text (text codecs) or a hex template (binary
    codec); a `value` group (`(?P<value>...)` or `{value}`) captures the reading. `reply: null`
    means the device sends no reply to this command.
    """

    send: str
    reply: str | None = ""
    timeout: Annotated[float, Field(gt=0, le=120)] | None = None

    @field_validator("send")
    @classmethod
    def _send_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Capability(Strict):
    """A standard or custom capability: how to read it and how to set it."""

    type: ValueType | None = None
    get: Command | None = None
    set: Command | None = None
    # Per-value commands, when each value has its own command (NEC power on/off).
    set_each: dict[str, Command] | None = None
    # Wire value -> semantic value when reading, many to one (Epson `04` network standby -> off).
    read: dict[str, str] | None = None
    # Semantic value -> wire value when setting (and when reading, where `read` does not say).
    values: dict[str, str] | None = None
    # Device units of a level: semantic 0..100 maps linearly onto this range.
    range: tuple[int, int] | None = None
    # Value format for numbers in text commands, e.g. "{:03d}" or "{:02x}".
    format: str | None = None
    # Base of numbers in text replies (LG writes hex) and byte order of numbers in binary replies;
    # a binary `text` capture with base 16 reads as hex digits (bit fields), not as characters.
    base: Literal[10, 16] = 10
    byteorder: Literal["big", "little"] = "big"
    # Parameters a route or a set may take besides `value` (switcher `output`).
    outputs: list[str] | None = None
    # A captured bit field read one bit at a time (relay boards: one bit per channel): the
    # reading is "1" or "0", then mapped by `read`. Bits count from 1 (1 = least significant, as
    # relay channels are numbered), written as a number or as a device option: '{channel}'.
    bit: Annotated[str, Field(pattern=r"^([1-9][0-9]?|\{[a-z_][a-z0-9_]*\})$")] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Capability:
        if self.set is not None and self.set_each is not None:
            raise ValueError("give either `set` or `set_each`, not both")
        if self.get is None and self.set is None and self.set_each is None:
            raise ValueError("a capability needs `get`, `set` or `set_each`")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("`range` must be [low, high] with low < high")
        return self


class Action(Strict):
    """A one-shot command that is not state: volume step, dial, camera preset."""

    send: str
    reply: str | None = ""
    params: list[str] = Field(default_factory=list)
    timeout: Annotated[float, Field(gt=0, le=120)] | None = None
    description: str | None = None


class ErrorReply(Strict):
    """A reply pattern meaning the device did not do what was asked."""

    match: str
    type: Literal["busy", "refused", "auth", "failure"] = "refused"
    message: str = ""


class PollEntry(Strict):
    """Read a capability every `every` seconds while the device is online."""

    get: str
    every: Annotated[float, Field(ge=0.1, le=86400)]


class IdentifyEntry(Strict):
    """A query run by `probe` and `detect`; `expect` is a regex the reading must match."""

    get: str | None = None
    send: str | None = None
    reply: str | None = None
    expect: str | None = None
    field: str | None = None

    @model_validator(mode="after")
    def _one_query(self) -> IdentifyEntry:
        if (self.get is None) == (self.send is None):
            raise ValueError("give either `get` (a capability) or `send` with `reply`")
        return self


class UsbId(Strict):
    """A USB vendor:product id under which the device (or its adapter) presents itself."""

    vid: Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
    pid: Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
    note: str | None = None


class OptionSpec(Strict):
    """A per-device option usable in templates (`{id}` for a display id)."""

    default: str | None = None
    # The values a device may give it (a relay channel: "1".."8"); any when left out.
    choices: list[str] | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> OptionSpec:
        if (
            self.choices is not None
            and self.default is not None
            and self.default not in self.choices
        ):
            raise ValueError(f"default {self.default!r} is not one of the choices")
        return self


class Profile(Strict):
    """A device profile: one YAML file under firmware-profiles/<kind>/."""

    id: Annotated[str, Field(pattern=PROFILE_ID)]
    name: str
    kind: DeviceKind
    vendor: str
    models: list[str] = Field(default_factory=list)
    version: str = "1"
    protocol: str = Field(description="the protocol document this profile follows")
    extends: str | None = None
    codec: Literal["line", "prompt", "binary", "pjlink", "usb"]
    codec_options: dict[str, Any] = Field(default_factory=dict)
    link: LinkSettings = Field(default_factory=LinkSettings)
    timing: Timing = Field(default_factory=Timing)
    options: dict[str, OptionSpec] = Field(default_factory=dict)
    errors: list[ErrorReply] = Field(default_factory=list)
    capabilities: dict[str, Capability] = Field(default_factory=dict)
    actions: dict[str, Action] = Field(default_factory=dict)
    poll: list[PollEntry] = Field(default_factory=list)
    identify: list[IdentifyEntry] = Field(default_factory=list)
    usb: list[UsbId] = Field(default_factory=list)

    @field_validator("capabilities")
    @classmethod
    def _capability_names(cls, caps: dict[str, Capability]) -> dict[str, Capability]:
        for name, cap in caps.items():
            if not re.match(CAPABILITY_NAME, name):
                raise ValueError(f"capability name {name!r} must be lower_snake_case")
            if name not in STANDARD_CAPABILITIES and cap.type is None:
                raise ValueError(f"custom capability {name!r} needs a `type`")
        return caps

    @model_validator(mode="after")
    def _references(self) -> Profile:
        for i, entry in enumerate(self.poll):
            cap = self.capabilities.get(entry.get)
            if cap is None or cap.get is None:
                raise ValueError(f"poll[{i}]: {entry.get!r} is not a readable capability")
        for i, ident in enumerate(self.identify):
            if ident.get is not None:
                cap = self.capabilities.get(ident.get)
                if cap is None or cap.get is None:
                    raise ValueError(f"identify[{i}]: {ident.get!r} is not a readable capability")
        return self

    def value_type(self, capability: str) -> ValueType:
        """The value type of a capability of this profile."""
        cap = self.capabilities[capability]
        if cap.type is not None:
            return cap.type
        return STANDARD_CAPABILITIES[capability]
