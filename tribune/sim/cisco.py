"""Cisco RoomOS / CE video codec, xAPI text terminal on RS-232 (115200 8N1) or TCP.

Follows Cisco's "API Reference Guide" for CE/RoomOS (Room Kit, SX80; the TC7 Codec C40/C60
and SX80 guides for the terminal output format):

- a request is one line: `xCommand <path> [Name: value ...]`, `xStatus [path]`,
  `xFeedback Register|Deregister <path>`, `xPreferences OutputMode Terminal`, `echo on|off`;
  keywords are case-insensitive; string values are quoted (`Number: "1234@example.com"`);
- a command result is `*r <Name>Result (status=OK):` (or `status=Error` with a `Reason`),
  a status leaf `*s Audio Microphones Mute: Off`, each reply block ends with `** end`, a blank
  line and `OK` (`ERROR` when the request failed); lines end with CR LF;
- `xCommand Dial Number: "…"` answers `CallId` and `ConferenceId`; the call is `Dialling`,
  then `Connecting` while the far end rings, then `Connected`; `xCommand Call Disconnect
  [CallId: n]`, `xCommand Audio Microphones Mute|Unmute`, `xCommand Camera Preset Activate
  PresetId: n`, `xCommand Audio Volume Set Level: n`; `xStatus Call`, `xStatus Audio
  Microphones Mute`, `xStatus Audio Volume`, `xStatus SystemUnit ProductId | Software Version |
  Hardware Module SerialNumber | State NumberOfActiveCalls | State NumberOfInProgressCalls`
  (active calls are connected ones; in-progress ones are still dialling or ringing);
- after `xFeedback Register /Status/Call` (or `/Status`, `/Event`, ...) the codec prints
  changes unsolicited: `*s Call 3 Status: Connected` / `** end`, `*e CallDisconnect …`.

Real serial ports echo typed characters until `echo off`; this simulator starts with echo off
on both links (the `echo` command is honoured). Ringing time is 3 s, dialling 0.5 s (divided
by speed); the far end always answers.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.sim.base import LineSettings, Link, Session, Simulator

CRLF = "\r\n"
END = "** end"
DIALLING_SECONDS = 0.5
RINGING_SECONDS = 3.0
PARAMETER = re.compile(r'(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|\S+)')
STATUS_ROOTS = ("audio", "call", "cameras", "conference", "standby", "systemunit", "video")


@dataclass
class Call:
    """One call the codec has placed."""

    call_id: int
    number: str
    status: str = "Dialling"
    answer_state: str = "Unanswered"
    handles: list[asyncio.TimerHandle] = field(default_factory=list)


@dataclass
class CiscoState:
    """What a RoomOS codec reports."""

    product_id: str = "Cisco Webex Room Kit"
    product_platform: str = "Room Kit"
    software_version: str = "ce9.15.3.17 f1e26a5ef10 2021-06-29"
    serial_number: str = "FOC2247N0XY"
    microphones_mute: bool = False
    volume: int = 50
    standby: str = "Off"
    presets: dict[int, str] = field(default_factory=lambda: {1: "Lectern", 2: "Whiteboard"})
    active_preset: int | None = None
    calls: dict[int, Call] = field(default_factory=dict)
    next_call_id: int = 1


class CiscoError(Exception):
    """A command that ends with `status=Error` and a reason."""


class CiscoSimulator(Simulator[CiscoState]):
    """A Cisco Room Kit-style codec."""

    id = "cisco-roomos"
    title = "Cisco RoomOS/CE codec (xAPI terminal)"
    document = "Cisco CE/RoomOS API Reference Guide (Room Kit, SX80, Codec C40/C60)"
    tcp_port = 23
    serial = LineSettings(115200)

    def initial_state(self) -> CiscoState:
        """Idle, microphones on, no calls."""
        return CiscoState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """The same terminal on TCP and serial."""
        return CiscoSession(self, link)

    async def stop(self) -> None:
        """Cancel pending call progress."""
        for call in self.state.calls.values():
            for handle in call.handles:
                handle.cancel()

    def status(self) -> list[tuple[str, str]]:
        """Every status leaf as (path, printed value), in xStatus order."""
        state = self.state
        leaves = [
            ("Audio Microphones Mute", "On" if state.microphones_mute else "Off"),
            ("Audio Volume", str(state.volume)),
        ]
        for call in state.calls.values():
            prefix = f"Call {call.call_id}"
            leaves += [
                (f"{prefix} AnswerState", call.answer_state),
                (f"{prefix} CallType", "Video"),
                (f"{prefix} Direction", "Outgoing"),
                (f"{prefix} RemoteNumber", f'"{call.number}"'),
                (f"{prefix} Status", call.status),
            ]
        preset = "" if state.active_preset is None else str(state.active_preset)
        connected = sum(call.status == "Connected" for call in state.calls.values())
        leaves += [
            ("Cameras Camera 1 Connected", "True"),
            ("Cameras Camera 1 Preset", f'"{preset}"'),
            ("Conference ActiveCalls", str(len(state.calls))),
            ("Standby State", state.standby),
            ("SystemUnit Hardware Module SerialNumber", f'"{state.serial_number}"'),
            ("SystemUnit ProductId", f'"{state.product_id}"'),
            ("SystemUnit ProductPlatform", f'"{state.product_platform}"'),
            ("SystemUnit Software Version", f'"{state.software_version}"'),
            ("SystemUnit State NumberOfActiveCalls", str(connected)),
            ("SystemUnit State NumberOfInProgressCalls", str(len(state.calls) - connected)),
        ]
        return leaves

    def notify(self, path: str, lines: list[str]) -> None:
        """Send `lines` (one feedback block) to every session registered for `path`."""
        text = CRLF.join([*lines, END]) + CRLF
        for session in list(self.sessions):
            if isinstance(session, CiscoSession) and session.wants(path):
                session.send(text.encode())

    def _status_changed(self, path: str, value: str) -> None:
        self.notify(f"/Status/{path.replace(' ', '/')}", [f"*s {path}: {value}"])

    # Commands: each returns the result lines after the `*r … (status=OK):` header.

    def dial(self, params: dict[str, str]) -> list[str]:
        """Dial Number: "…"."""
        number = params.get("number")
        if not number:
            raise CiscoError('Missing or invalid parameter(s): "Number"')
        state = self.state
        call = Call(state.next_call_id, number)
        state.next_call_id += 1
        state.calls[call.call_id] = call
        loop = asyncio.get_running_loop()
        dialled = self.scaled(DIALLING_SECONDS)
        call.handles = [
            loop.call_later(dialled, self._progress, call, "Connecting"),
            loop.call_later(dialled + self.scaled(RINGING_SECONDS), self._progress, call, ""),
        ]
        indication = f"*e OutgoingCallIndication CallId: {call.call_id}"
        self.notify("/Event/OutgoingCallIndication", [indication])
        self._status_changed(f"Call {call.call_id} Status", call.status)
        return [f"CallId: {call.call_id}", f"ConferenceId: {call.call_id}"]

    def _progress(self, call: Call, status: str) -> None:
        if call.call_id not in self.state.calls:
            return
        if status:
            call.status = status
        else:
            call.status, call.answer_state = "Connected", "Answered"
            self._status_changed(f"Call {call.call_id} AnswerState", call.answer_state)
        self._status_changed(f"Call {call.call_id} Status", call.status)

    def disconnect(self, params: dict[str, str]) -> list[str]:
        """Call Disconnect [CallId: n]: without CallId, every call."""
        calls = self.state.calls
        if "callid" in params:
            wanted = params["callid"]
            if not wanted.isdigit() or int(wanted) not in calls:
                raise CiscoError("No active call(s) found")
            ids = [int(wanted)]
        else:
            ids = list(calls)
        if not ids:
            raise CiscoError("No active call(s) found")
        for call_id in ids:
            call = calls.pop(call_id)
            for handle in call.handles:
                handle.cancel()
            self.notify(
                "/Event/CallDisconnect",
                [
                    "*e CallDisconnect CauseValue: 1",
                    '*e CallDisconnect CauseType: "LocalDisconnect"',
                    f"*e CallDisconnect CallId: {call_id}",
                ],
            )
            self.notify(f"/Status/Call/{call_id}", [f"*s Call {call_id} (ghost=True):"])
        return []

    def mute(self, on: bool) -> list[str]:
        """Audio Microphones Mute / Unmute."""
        self.state.microphones_mute = on
        self._status_changed("Audio Microphones Mute", "On" if on else "Off")
        return []

    def set_volume(self, params: dict[str, str]) -> list[str]:
        """Audio Volume Set Level: 0-100."""
        value = params.get("level", "")
        if not value.isdigit() or int(value) > 100:
            raise CiscoError('Missing or invalid parameter(s): "Level"')
        self.state.volume = int(value)
        self._status_changed("Audio Volume", value)
        return []

    def preset(self, params: dict[str, str]) -> list[str]:
        """Camera Preset Activate PresetId: n."""
        value = params.get("presetid", "")
        if not value.isdigit() or not 1 <= int(value) <= 35:
            raise CiscoError('Missing or invalid parameter(s): "PresetId"')
        if int(value) not in self.state.presets:
            raise CiscoError("Preset not found")
        self.state.active_preset = int(value)
        return []


CommandHandler = Callable[[CiscoSimulator, dict[str, str]], list[str]]

COMMANDS: dict[tuple[str, ...], tuple[str, CommandHandler]] = {
    ("dial",): ("DialResult", lambda sim, p: sim.dial(p)),
    ("call", "disconnect"): ("CallDisconnectResult", lambda sim, p: sim.disconnect(p)),
    ("audio", "microphones", "mute"): ("MicrophonesMuteResult", lambda sim, p: sim.mute(True)),
    ("audio", "microphones", "unmute"): (
        "MicrophonesUnmuteResult",
        lambda sim, p: sim.mute(False),
    ),
    ("audio", "volume", "set"): ("AudioVolumeSetResult", lambda sim, p: sim.set_volume(p)),
    ("camera", "preset", "activate"): ("PresetActivateResult", lambda sim, p: sim.preset(p)),
}


class CiscoSession(Session):
    """One terminal: lines in, `** end`-terminated blocks out, optional feedback."""

    sim: CiscoSimulator
    max_line = 1024

    def __init__(self, sim: CiscoSimulator, link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""
        self.echo = False
        self.feedback: set[str] = set()

    def wants(self, path: str) -> bool:
        """True when a registered feedback expression covers `path`."""
        path = path.lower()
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.feedback)

    def data_received(self, data: bytes) -> None:
        """Split on CR or LF; empty lines are ignored."""
        if self.echo:
            self.send(data)
        self._buffer += data
        while not self._closed:
            match = re.search(rb"[\r\n]", self._buffer)
            if match is None:
                if len(self._buffer) > self.max_line:
                    self._buffer = b""
                return
            line = self._buffer[: match.start()].strip()
            self._buffer = self._buffer[match.end() :]
            if line:
                self.dispatch(line)

    def answer(self, request: bytes) -> bytes | None:
        """The reply block to one line."""
        text = request.decode("utf-8", "replace").strip()
        keyword, _, rest = text.partition(" ")
        keyword = keyword.lower()
        if keyword == "xcommand":
            lines, ok = self._command(rest)
        elif keyword == "xstatus":
            lines, ok = self._status(rest)
        elif keyword == "xfeedback":
            lines, ok = self._feedback(rest)
        elif keyword == "xpreferences":
            lines, ok = [], rest.lower().split() in (["outputmode", "terminal"], [])
        elif keyword == "echo" and rest.lower() in ("on", "off"):
            self.echo = rest.lower() == "on"
            lines, ok = [], True
        elif keyword == "bye":
            self.close_after_send()
            return b"bye" + CRLF.encode()
        else:
            return b"Command not recognized." + CRLF.encode()
        return _block(lines, ok)

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: an error result."""
        return _block(["*r Result (status=Error): ", '*r Result Reason: "System busy"'], False)

    def _command(self, rest: str) -> tuple[list[str], bool]:
        head, _, _ = rest.partition(":")
        words = head.split()
        # The last word before the first `:` is a parameter name, not part of the path.
        path_words = words[:-1] if ":" in rest else words
        path = tuple(word.lower() for word in path_words)
        params = {name.lower(): value.strip('"') for name, value in PARAMETER.findall(rest)}
        entry = COMMANDS.get(path)
        if entry is None:
            return [
                "*r Result (status=Error): ",
                '*r Result Reason: "Unknown command"',
                f'*r Result XPath: "/{"/".join(path_words)}"',
            ], False
        name, handler = entry
        try:
            values = handler(self.sim, params)
        except CiscoError as error:
            return [f"*r {name} (status=Error): ", f'*r {name} Reason: "{error}"'], False
        return [f"*r {name} (status=OK): ", *(f"*r {name} {value}" for value in values)], True

    def _status(self, rest: str) -> tuple[list[str], bool]:
        wanted = rest.replace("/", " ").lower().split()
        leaves = [
            f"*s {path}: {value}"
            for path, value in self.sim.status()
            if path.lower().split()[: len(wanted)] == wanted
        ]
        if leaves or not wanted or (len(wanted) <= 2 and wanted[0] in STATUS_ROOTS):
            return leaves, True
        return [
            "*r Status (status=Error): ",
            '*r Status Reason: "No match on address expression."',
            f'*r Status XPath: "/{"/".join(rest.split())}"',
        ], False

    def _feedback(self, rest: str) -> tuple[list[str], bool]:
        action, _, expression = rest.strip().partition(" ")
        expression = expression.strip().lower()
        if action.lower() == "register" and expression.startswith("/"):
            self.feedback.add(expression)
            return [], True
        if action.lower() == "deregister" and expression.startswith("/"):
            self.feedback.discard(expression)
            return [], True
        if action.lower() == "deregisterall":
            self.feedback.clear()
            return [], True
        return [
            "*r Result (status=Error): ",
            '*r Result Reason: "Invalid feedback expression"',
        ], False


def _block(lines: list[str], ok: bool) -> bytes:
    """Result or status lines, `** end`, a blank line and OK/ERROR."""
    return CRLF.join([*lines, END, "", "OK" if ok else "ERROR"]).encode() + CRLF.encode()
