"""A profile compiled for use on a link: templates compiled, values converted both ways.

Semantic values are what the room and people use: `"on"`, `"warming"`, `"hdmi1"`, `40`, `True`.
Wire values are what the profile's templates carry: `"1"`, `"32"`, `"0A"` (hex for binary codecs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tribune.drivers.codecs.base import Frame
from tribune.errors import (
    AuthenticationError,
    ConfigError,
    DeviceBusyError,
    DeviceError,
    DeviceRefusedError,
    NotSupportedError,
    ProtocolError,
)
from tribune.profiles.schema import (
    HEX_CODECS,
    POWER_STATES,
    Capability,
    Command,
    Profile,
    ValueType,
)
from tribune.profiles.templates import ReplyPattern, SendTemplate, compile_reply, compile_send

Value = str | int | bool | dict[str, str]

_TRUE = frozenset({"on", "true", "1", "yes"})
_NUMBER = re.compile(r"\d{1,3}")
# What a free-form parameter (a number to dial, a preset) may hold: no quotes, separators or
# control characters, so it can never end the command it sits in and start another.
SAFE_PARAMETER = re.compile(r"[A-Za-z0-9@._:+-]{1,64}")


def check_parameter(name: str, value: str) -> str:
    """`value` if it is safe inside a device command; `NotSupportedError` otherwise."""
    if not SAFE_PARAMETER.fullmatch(value):
        raise NotSupportedError(
            f"{name}: {value!r} may hold only letters, digits and @ . _ : + - (at most 64)"
        )
    return value


_FALSE = frozenset({"off", "false", "0", "no"})


@dataclass(frozen=True, slots=True)
class CompiledCommand:
    """A command ready to render and to recognise its reply."""

    send: SendTemplate
    reply: ReplyPattern | None
    timeout: float | None
    byteorder: Literal["big", "little"] = "big"

    def render(self, params: Mapping[str, str | int]) -> bytes:
        """The request payload; a missing parameter is a `NotSupportedError`."""
        try:
            return self.send.render(params, byteorder=self.byteorder)
        except KeyError as exc:
            raise NotSupportedError(f"missing parameter {exc.args[0]!r}") from None
        except (ValueError, OverflowError) as exc:
            raise NotSupportedError(f"bad parameter: {exc}") from None


@dataclass(frozen=True, slots=True)
class ErrorPattern:
    """A compiled profile `errors:` entry."""

    pattern: ReplyPattern
    kind: str
    message: str


@dataclass(slots=True)
class CompiledCapability:
    """One capability of a compiled profile."""

    name: str
    type: ValueType
    spec: Capability
    get: CompiledCommand | None
    set: CompiledCommand | None
    set_each: dict[str, CompiledCommand] = field(default_factory=dict)
    bit: int | None = None  # the reading is this bit (0 = least significant) of the capture

    @property
    def readable(self) -> bool:
        """Whether the capability can be read from the device."""
        return self.get is not None

    @property
    def settable(self) -> bool:
        """Whether the capability can be set."""
        return self.set is not None or bool(self.set_each)

    def choices(self) -> list[str]:
        """Semantic values accepted by `set`, for enums, power and booleans."""
        if self.set_each:
            return list(self.set_each)
        return list((self.spec.values or {}).keys())


class CompiledProfile:
    """A profile with its templates compiled for its codec."""

    def __init__(self, profile: Profile, options: Mapping[str, str] | None = None) -> None:
        """`options` are the device's (the profile's defaults fill in the rest): a capability
        may take a bit (`bit: '{channel}'`) or its value names (`'{on}'`) from them."""
        self.profile = profile
        self.binary = profile.codec in HEX_CODECS
        self.options = device_options(profile, options)
        self.capabilities: dict[str, CompiledCapability] = {}
        for name, spec in profile.capabilities.items():
            spec = _named_values(name, spec, self.options)
            self.capabilities[name] = CompiledCapability(
                name=name,
                type=profile.value_type(name),
                spec=spec,
                get=self._command(spec.get, spec.byteorder),
                set=self._command(spec.set, spec.byteorder),
                set_each={
                    k: self._command_required(c, spec.byteorder)
                    for k, c in (spec.set_each or {}).items()
                },
                bit=_bit(name, spec.bit, self.options),
            )
        self.actions = {
            name: CompiledCommand(
                compile_send(a.send, binary=self.binary),
                None if a.reply is None else compile_reply(a.reply, binary=self.binary),
                a.timeout,
            )
            for name, a in profile.actions.items()
        }
        self.errors = [
            ErrorPattern(compile_reply(e.match, binary=self.binary), e.type, e.message)
            for e in profile.errors
        ]

    def _command(
        self, command: Command | None, byteorder: Literal["big", "little"]
    ) -> CompiledCommand | None:
        return None if command is None else self._command_required(command, byteorder)

    def _command_required(
        self, command: Command, byteorder: Literal["big", "little"] = "big"
    ) -> CompiledCommand:
        reply = None if command.reply is None else compile_reply(command.reply, binary=self.binary)
        send = compile_send(command.send, binary=self.binary)
        return CompiledCommand(send, reply, command.timeout, byteorder)

    def capability(self, name: str) -> CompiledCapability:
        """A capability by name; `NotSupportedError` if the profile lacks it."""
        cap = self.capabilities.get(name)
        if cap is None:
            known = ", ".join(sorted(self.capabilities)) or "none"
            raise NotSupportedError(
                f"profile {self.profile.id!r} has no capability {name!r} (it has: {known})"
            )
        return cap

    def error_in(self, frame: Frame) -> DeviceError | None:
        """The device error a reply means, if it matches one of the profile's error patterns."""
        for err in self.errors:
            if err.pattern.match(frame.data) is not None:
                text = frame.text().strip() if not self.binary else frame.data.hex(" ").upper()
                message = f"{err.message} ({text})" if err.message else text
                if err.kind == "busy":
                    return DeviceBusyError(message, code=text)
                if err.kind == "auth":
                    return AuthenticationError(message, code=text)
                if err.kind == "refused":
                    return DeviceRefusedError(message, code=text)
                return DeviceError(message, code=text)
        return None

    # --- values -----------------------------------------------------------------------------

    def parse_value(self, cap: CompiledCapability, text: str) -> Value:
        """A semantic value from user text (CLI, API): `on`, `40`, `hdmi1`, `2>1`."""
        if cap.type is ValueType.BOOL:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise NotSupportedError(f"{cap.name}: {text!r} is not on/off")
        if cap.type in (ValueType.LEVEL, ValueType.INT):
            try:
                return int(text)
            except ValueError:
                raise NotSupportedError(f"{cap.name}: {text!r} is not a number") from None
        if cap.type is ValueType.ROUTE:
            source, sep, output = text.partition(">")
            if not sep or not source or not output:
                raise NotSupportedError(f"{cap.name}: want INPUT>OUTPUT, got {text!r}")
            return {_canonical(output.strip()): _canonical(source.strip())}
        return text.strip()

    def set_params(
        self, cap: CompiledCapability, value: Value
    ) -> tuple[CompiledCommand, dict[str, Any]]:
        """The command and template parameters that set `cap` to `value`."""
        if cap.type is ValueType.ROUTE:
            if not isinstance(value, dict) or len(value) != 1:
                raise NotSupportedError(f"{cap.name}: want one output and its input")
            ((output, source),) = value.items()
            self._check_output(cap, output)
            if cap.set is None:
                raise NotSupportedError(f"{cap.name} cannot be set")
            if cap.spec.values is None and not _NUMBER.fullmatch(str(source)):
                raise NotSupportedError(f"{cap.name}: input {source!r} is not an input number")
            return cap.set, {"input": self._wire(cap, source), "output": output}
        key = self._semantic_key(cap, value)
        if cap.set_each:
            command = cap.set_each.get(key)
            if command is None:
                raise NotSupportedError(
                    f"{cap.name}: {key!r} is not one of {', '.join(cap.set_each)}"
                )
            return command, {}
        if cap.set is None:
            raise NotSupportedError(f"{cap.name} is read-only on this device")
        return cap.set, {"value": self._wire(cap, key if cap.spec.values else value)}

    def normalize(self, cap: CompiledCapability, value: Any) -> Value:
        """A semantic value from JSON (API, config): "on" for a boolean, "40" for a level...

        Raises `NotSupportedError` when the value cannot be set on this device.
        """
        if value is None:
            raise NotSupportedError(f"{cap.name}: a value is required")
        if isinstance(value, str):
            value = self.parse_value(cap, value)
        elif cap.type is ValueType.ROUTE:
            if not isinstance(value, dict) or not value:
                raise NotSupportedError(f"{cap.name}: want {{output: input}}")
            if not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in value.values()
            ):
                raise NotSupportedError(f"{cap.name}: each input is a number or a name")
            value = {_canonical(str(k)): _canonical(str(v)) for k, v in value.items()}
        elif cap.type is ValueType.BOOL and not isinstance(value, bool):
            raise NotSupportedError(f"{cap.name}: want true/false or on/off")
        elif cap.type in (ValueType.LEVEL, ValueType.INT) and (
            not isinstance(value, int) or isinstance(value, bool)
        ):
            raise NotSupportedError(f"{cap.name}: want a whole number")
        if cap.type is ValueType.ROUTE:
            assert isinstance(value, dict)
            for output, source in value.items():
                self.set_params(cap, {output: source})
        else:
            self.set_params(cap, value)
        normalized: Value = value
        return normalized

    def same_value(self, cap: CompiledCapability, desired: Value, reported: Value) -> bool:
        """Whether a reading satisfies a desired value (levels compared in device units)."""
        if cap.type is ValueType.ROUTE:
            if not isinstance(desired, dict) or not isinstance(reported, dict):
                return False
            return all(reported.get(out) == src for out, src in desired.items())
        if cap.type is ValueType.LEVEL and isinstance(desired, int) and isinstance(reported, int):
            return self._wire(cap, desired) == self._wire(cap, reported)
        return desired == reported

    def get_params(self, cap: CompiledCapability, output: str | None = None) -> dict[str, Any]:
        """Template parameters for reading `cap` (a switcher output for routes)."""
        if cap.type is ValueType.ROUTE:
            if output is None:
                raise NotSupportedError(f"{cap.name}: which output?")
            self._check_output(cap, output)
            return {"output": output}
        return {}

    def _check_output(self, cap: CompiledCapability, output: str) -> None:
        outputs = cap.spec.outputs
        if outputs is not None and output not in outputs:
            raise NotSupportedError(f"{cap.name}: no output {output!r} (has {', '.join(outputs)})")
        if outputs is None and not _NUMBER.fullmatch(str(output)):
            raise NotSupportedError(f"{cap.name}: output {output!r} is not an output number")

    def _semantic_key(self, cap: CompiledCapability, value: Value) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if cap.type is ValueType.POWER and value not in POWER_STATES:
            raise NotSupportedError(f"power: {value!r} is not one of {', '.join(POWER_STATES)}")
        return str(value)

    def _wire(self, cap: CompiledCapability, value: Value) -> str | int:
        values = cap.spec.values
        if values is not None:
            wire = values.get(str(value))
            if wire is None:
                choices = ", ".join(values) or "none"
                raise NotSupportedError(f"{cap.name}: {value!r} is not one of {choices}")
            return wire
        if cap.type in (ValueType.LEVEL, ValueType.INT):
            if not isinstance(value, int) or isinstance(value, bool):
                raise NotSupportedError(f"{cap.name}: {value!r} is not a number")
            number = value
            if cap.type is ValueType.LEVEL:
                if not 0 <= value <= 100:
                    raise NotSupportedError(f"{cap.name}: {value} is outside 0..100")
                low, high = cap.spec.range or (0, 100)
                number = round(low + (high - low) * value / 100)
            if self.binary:
                return number
            return cap.spec.format.format(number) if cap.spec.format else str(number)
        return check_parameter(cap.name, str(value))

    def decode_value(self, cap: CompiledCapability, groups: Mapping[str, str]) -> Value:
        """The semantic value of a reply's captured `value`."""
        wire = groups.get("value")
        if wire is None:
            raise ProtocolError(f"{cap.name}: the reply pattern captured no value")
        if cap.bit is not None:
            try:
                number = int(wire, 16) if self.binary else int(wire.strip(), cap.spec.base)
            except ValueError:
                raise ProtocolError(f"{cap.name}: {wire!r} is not a bit field") from None
            wire = "1" if number >> cap.bit & 1 else "0"
        if cap.spec.read is not None and wire in cap.spec.read:
            return self._typed(cap, cap.spec.read[wire])
        if cap.spec.values is not None:
            for semantic, candidate in cap.spec.values.items():
                if candidate.upper() == wire.upper():
                    return self._typed(cap, semantic)
            if cap.type is not ValueType.ROUTE:
                raise ProtocolError(f"{cap.name}: unknown value {wire!r} from the device")
        if cap.type in (ValueType.LEVEL, ValueType.INT):
            try:
                if self.binary:
                    number = int.from_bytes(bytes.fromhex(wire), cap.spec.byteorder)
                else:
                    number = int(wire.strip(), cap.spec.base)
            except ValueError:
                raise ProtocolError(f"{cap.name}: {wire!r} is not a number") from None
            if cap.type is ValueType.LEVEL:
                low, high = cap.spec.range or (0, 100)
                number = round((number - low) * 100 / (high - low))
                number = min(100, max(0, number))
            return number
        if cap.type is ValueType.TEXT and self.binary:
            if cap.spec.base == 16:
                return wire  # bit fields (NEC error status): the bytes as hex, not as text
            return bytes.fromhex(wire).rstrip(b"\x00").decode("latin-1").strip()
        return wire.strip()

    def _typed(self, cap: CompiledCapability, semantic: str) -> Value:
        if cap.type is ValueType.BOOL:
            return semantic == "on"
        return semantic


_OPTION = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def device_options(profile: Profile, given: Mapping[str, str] | None) -> dict[str, str]:
    """The profile's option defaults with a device's options on top, checked against choices."""
    options = {k: v.default for k, v in profile.options.items() if v.default is not None}
    options.update(given or {})
    for key, value in options.items():
        spec = profile.options.get(key)
        if spec is not None and spec.choices is not None and value not in spec.choices:
            raise ConfigError(
                f"option {key} = {value!r}: profile {profile.id!r} takes one of "
                + ", ".join(spec.choices)
            )
    return options


def _with_options(where: str, text: str, options: Mapping[str, str]) -> str:
    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in options:
            raise ConfigError(f"{where}: {text!r} needs the device option {name!r}")
        return options[name]

    return _OPTION.sub(value_of, text)


def _named_values(name: str, spec: Capability, options: Mapping[str, str]) -> Capability:
    """`spec` with value names taken from the device's options (`'{on}'` -> `down`)."""
    values, read = spec.values, spec.read
    if not any("{" in key for key in values or {}) and not any(
        "{" in v for v in (read or {}).values()
    ):
        return spec
    where = f"capability {name}"
    if values is not None:
        values = {_with_options(where, k, options): v for k, v in values.items()}
        if len(values) < len(spec.values or {}):
            raise ConfigError(f"{where}: two values have the same name ({', '.join(values)})")
    if read is not None:
        read = {k: _with_options(where, v, options) for k, v in read.items()}
    return spec.model_copy(update={"values": values, "read": read})


def _bit(name: str, bit: str | None, options: Mapping[str, str]) -> int | None:
    """The 0-based bit a capability reads, from its 1-based `bit` (a number or an option)."""
    if bit is None:
        return None
    text = _with_options(f"capability {name}: bit", bit, options)
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ConfigError(f"capability {name}: bit {bit!r} is {text!r}, not a number 1..64")
    return int(text) - 1


def _canonical(text: str) -> str:
    """Switcher port numbers without leading zeros ("01" and "1" are the same input)."""
    return str(int(text)) if text.isdigit() else text
