"""Probe: does the device on a port answer a profile the way the profile says it should?

A probe opens its own link (no device runtime, no polls), runs the profile's `identify:` queries
and then reads every readable capability once. The verdict is "matches" when every identify
query was answered and every `expect` pattern matched. `detect` runs probes without the readings.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tribune.drivers.capabilities import CompiledCapability, CompiledProfile, Value
from tribune.drivers.codecs import make_codec
from tribune.drivers.codecs.base import Frame
from tribune.drivers.link import DeviceLink
from tribune.drivers.runtime import check_port, line_settings, session_for
from tribune.drivers.transport import LineSettings
from tribune.errors import (
    AuthenticationError,
    DeviceError,
    DeviceTimeoutError,
    NotSupportedError,
    ProtocolError,
)
from tribune.profiles.schema import IdentifyEntry, Profile, ValueType
from tribune.profiles.templates import ReplyPattern, compile_reply, compile_send

IDENTITY_FIELDS = ("model", "firmware", "serial")


@dataclass(frozen=True, slots=True)
class IdentifyResult:
    """What one `identify:` query got back."""

    index: int
    query: str  # "get model" or "send 'PWR?'"
    field: str | None  # model / firmware / serial (or the capability read)
    value: str | None  # None when the device did not answer
    expect: str | None
    matched: bool | None  # None when there is nothing to expect
    error: str | None = None

    @property
    def answered(self) -> bool:
        """Whether the device answered in the profile's form."""
        return self.value is not None

    @property
    def ok(self) -> bool:
        """Answered, and the reading matches `expect` if there is one."""
        return self.answered and self.matched is not False

    def problem(self) -> str | None:
        """What did not match, in a technician's words; None when it did."""
        if not self.answered:
            return f"identify[{self.index}] {self.query}: {self.error or 'no answer'}"
        if self.matched is False:
            return (
                f"identify[{self.index}] {self.query}: {self.value!r} does not match "
                f"{self.expect!r}"
            )
        return None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "index": self.index,
            "query": self.query,
            "field": self.field,
            "value": self.value,
            "expect": self.expect,
            "matched": self.matched,
            "ok": self.ok,
            "error": self.error,
        }


@dataclass(slots=True)
class ProbeReport:
    """Everything a probe learnt about the device on a port, and the verdict."""

    profile_id: str
    port: str
    line: str | None  # "9600 8N1" on serial ports, None on TCP
    identify: list[IdentifyResult] = field(default_factory=list)
    readings: dict[str, Value] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # What the profile says it covers, for a protocol with no model query (ESC/VP21).
    models: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        """Every identify query answered and every expect matched."""
        return bool(self.identify) and all(r.ok for r in self.identify)

    @property
    def score(self) -> int:
        """How well the device answered: identify answers plus expects matched."""
        return sum(r.answered for r in self.identify) + sum(
            r.matched is True for r in self.identify
        )

    @property
    def answered(self) -> bool:
        """Whether any identify query was answered."""
        return any(r.answered for r in self.identify)

    def problems(self) -> list[str]:
        """What did not match; empty when the device matches."""
        if not self.identify:
            return [f"{self.profile_id} has no identify queries"]
        return [p for p in (r.problem() for r in self.identify) if p is not None]

    def identity(self) -> dict[str, str]:
        """Model, firmware and serial, from identify queries or readings, where known."""
        found: dict[str, str] = {}
        for result in self.identify:
            if result.field in IDENTITY_FIELDS and result.value is not None:
                found.setdefault(result.field, result.value)
        for name in IDENTITY_FIELDS:
            value = self.readings.get(name)
            if value is not None:
                found.setdefault(name, str(value))
        return found

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "profile": self.profile_id,
            "port": self.port,
            "line": self.line,
            "matches": self.matches,
            "score": self.score,
            **{name: self.identity().get(name) for name in IDENTITY_FIELDS},
            "identify": [r.to_json() for r in self.identify],
            "readings": self.readings,
            "read_errors": self.read_errors,
            "problems": self.problems(),
            "seconds": round(self.seconds, 3),
        }


class Prober:
    """One link to one port, spoken with one profile; short, plain exchanges."""

    def __init__(
        self,
        profile: Profile,
        port: str,
        *,
        password: str | None = None,
        line: Mapping[str, Any] | None = None,
        options: Mapping[str, str] | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        check_port(profile, port)
        self.profile = profile
        self.port = port
        self.compiled = CompiledProfile(profile, options)
        self.timeout = timeout or profile.timing.reply_timeout
        self.retries = profile.timing.retries if retries is None else retries
        self.options = dict(self.compiled.options)
        self.settings: LineSettings = line_settings(profile, line)
        self.link = DeviceLink(
            port,
            codec=make_codec(profile.codec, profile.codec_options),
            settings=self.settings,
            session=session_for(profile, port, password),
            # A greeting (PJLink) comes at once; a short probe must not wait the runtime's 3 s.
            handshake_timeout=handshake_timeout or max(1.0, 2 * self.timeout),
            name=f"{profile.id}@{port}",
        )
        self._last_end = 0.0

    @property
    def is_serial(self) -> bool:
        """Whether the port is a serial line (line settings apply)."""
        return not self.port.startswith(("tcp://", "socket://", "usb://"))

    async def __aenter__(self) -> Prober:
        await self.link.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.link.close()

    async def identify(self, *, give_up_when_silent: bool = True) -> list[IdentifyResult]:
        """Run the identify queries; stop at the first unanswered one if none answered yet."""
        results: list[IdentifyResult] = []
        entries = self.profile.identify
        for index, entry in enumerate(entries):
            result = await self._identify_one(index, entry)
            results.append(result)
            silent = not any(r.answered for r in results) and _is_silence(result)
            if give_up_when_silent and silent:
                results += [
                    _not_asked(rest, skipped)
                    for rest, skipped in enumerate(entries[index + 1 :], index + 1)
                ]
                break
        return results

    async def read_all(self) -> tuple[dict[str, Value], dict[str, str]]:
        """Read every readable capability once: (readings, errors by capability)."""
        readings: dict[str, Value] = {}
        errors: dict[str, str] = {}
        for cap in self.compiled.capabilities.values():
            if cap.get is None:
                continue
            outputs: list[str | None] = [None]
            if cap.type is ValueType.ROUTE:
                outputs = list(cap.spec.outputs or ["1"])
            for output in outputs:
                name = cap.name if output is None else f"{cap.name}[{output}]"
                try:
                    value = await self.read(cap, output)
                except AuthenticationError:
                    raise
                except (DeviceError, DeviceTimeoutError, ProtocolError, NotSupportedError) as exc:
                    errors[name] = str(exc)
                    continue
                readings[name] = value[output] if isinstance(value, dict) and output else value
        return readings, errors

    async def read(self, cap: CompiledCapability, output: str | None = None) -> Value:
        """Read one capability (one output of a route)."""
        if cap.get is None or cap.get.reply is None:
            raise NotSupportedError(f"{cap.name} cannot be read")
        params = {**self.options, **self.compiled.get_params(cap, output)}
        payload = cap.get.render(params)
        _, groups = await self._exchange(payload, cap.get.reply, cap.get.timeout)
        value = self.compiled.decode_value(cap, groups)
        if cap.type is ValueType.ROUTE and output is not None:
            return {output: str(value)}
        return value

    async def _identify_one(self, index: int, entry: IdentifyEntry) -> IdentifyResult:
        query = _describe(entry)
        value: str | None
        try:
            if entry.get is not None:
                reading = await self.read(self.compiled.capability(entry.get))
                value = _text(reading)
            else:
                assert entry.send is not None
                binary = self.compiled.binary
                payload = compile_send(entry.send, binary=binary).render(self.options)
                reply = compile_reply(entry.reply or ".*", binary=binary)
                frame, groups = await self._exchange(payload, reply, None)
                # Without a `value` group, the whole reply is what `expect` looks at.
                value = groups.get("value") or _reply_text(frame, binary=binary)
        except AuthenticationError:
            raise
        except DeviceTimeoutError as exc:
            return IdentifyResult(
                index, query, _field_of(entry), None, entry.expect, None, _no_reply(exc)
            )
        except (DeviceError, ProtocolError, NotSupportedError) as exc:
            return IdentifyResult(
                index, query, _field_of(entry), None, entry.expect, None, str(exc)
            )
        matched = None if entry.expect is None else re.search(entry.expect, value) is not None
        return IdentifyResult(index, query, _field_of(entry), value, entry.expect, matched)

    async def _exchange(
        self, payload: bytes, reply: ReplyPattern, timeout: float | None
    ) -> tuple[Frame, dict[str, str]]:
        """One request, its reply and the reply's captured groups; device errors raise."""
        wait = self._last_end + self.profile.timing.gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        timeout = min(timeout or self.timeout, self.timeout)
        compiled = self.compiled

        def accept(frame: Frame) -> bool:
            return compiled.error_in(frame) is not None or reply.match(frame.data) is not None

        attempt = 0
        while True:
            garbled_before = self.link.frame_errors
            try:
                frame = await self.link.request(payload, accept, timeout)
                break
            except DeviceTimeoutError as exc:
                attempt += 1
                if attempt <= self.retries:
                    await self.link.discard_until_quiet(min(0.3, timeout / 2), timeout)
                    continue
                garbled = self.link.frame_errors - garbled_before
                if garbled:
                    raise DeviceTimeoutError(
                        f"{exc} ({garbled} garbled frames: another protocol or line settings?)"
                    ) from None
                raise
            finally:
                self._last_end = time.monotonic()
        error = compiled.error_in(frame)
        if error is not None:
            raise error
        groups = reply.match(frame.data)
        if groups is None:  # accepted above, so this cannot happen; keep mypy and readers sure
            raise ProtocolError(f"unexpected reply {frame.raw!r}")
        return frame, groups


async def probe(
    profile: Profile,
    port: str,
    *,
    password: str | None = None,
    line: Mapping[str, Any] | None = None,
    options: Mapping[str, str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    handshake_timeout: float | None = None,
    read_capabilities: bool = True,
) -> ProbeReport:
    """Probe the device on `port` with `profile`.

    Opening the port may raise `LinkError` (unreachable) or `AuthenticationError`; everything
    the device does or does not answer after that is in the report.
    """
    started = time.monotonic()
    prober = Prober(
        profile,
        port,
        password=password,
        line=line,
        options=options,
        timeout=timeout,
        retries=retries,
        handshake_timeout=handshake_timeout,
    )
    report = ProbeReport(profile.id, port, prober.settings.describe() if prober.is_serial else None)
    report.models = list(profile.models)
    async with prober:
        report.identify = await prober.identify()
        if read_capabilities and report.answered:
            report.readings, report.read_errors = await prober.read_all()
    report.seconds = time.monotonic() - started
    return report


def _describe(entry: IdentifyEntry) -> str:
    if entry.get is not None:
        return f"get {entry.get}"
    return f"send {entry.send!r}"


def _field_of(entry: IdentifyEntry) -> str | None:
    return entry.field or entry.get


def _text(value: Value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ", ".join(f"{out}:{src}" for out, src in value.items())
    return str(value)


def _is_silence(result: IdentifyResult) -> bool:
    return result.error is not None and result.error.startswith("no reply")


def _not_asked(index: int, entry: IdentifyEntry) -> IdentifyResult:
    reason = "not asked: the device did not answer the first query"
    return IdentifyResult(
        index, _describe(entry), _field_of(entry), None, entry.expect, None, reason
    )


def _reply_text(frame: Frame, *, binary: bool) -> str:
    return frame.data.hex(" ").upper() if binary else frame.text().strip()


def _no_reply(exc: DeviceTimeoutError) -> str:
    text = str(exc)
    _, _, detail = text.partition(": ")
    return detail if detail.startswith("no reply") else f"no reply ({text})"
