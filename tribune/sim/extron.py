"""Extron matrix switcher speaking SIS, on RS-232 (9600 8N1) or Telnet (TCP 23).

Follows the "SIS Configuration and Control" chapter of the Extron DXP DVI / DXP HDMI user
guide (command and response table) and the SW series guide (switcher-initiated messages):

- commands need no terminator: a command runs when its command character arrives
  (`1*3!` tie input 1 to output 3 -> `Out3 In1 All`; `&` RGB, `%` video, `$` audio;
  `5*!` tie input 5 to all outputs -> `In5 All`; `0*3!` unties); responses end with CR LF;
- `3%` / `3&` / `3$` view the input tied to output 3; `I` information (`V4X4 A4X4`),
  `Q` firmware, `N` part number; `1Z` audio mute -> `Amt1`, `1B` video mute -> `Vmt1`;
- one program audio output, in the form of the SW/MTP series table ("Local audio output
  volume"): `50V` -> `Vol50`, `+V` / `-V` step 1 %, `V` reads the bare level, 0-100 %.
  (Matrix switchers with per-output audio take `2*50V` -> `Out02 Vol50` instead: not modelled.)
- errors E01 invalid input, E10 invalid command, E12 invalid output, E13 invalid value,
  E22 busy; a pause of 10 s between characters aborts the command silently;
- on connect the switcher sends its copyright banner and date; it reports front-panel
  changes and `Reconfig` unsolicited.

`1!` (an input with no output) ties that input to every output, as on single-output
switchers where it selects the input; the response is `In1 All`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tribune.sim.base import LineSettings, Link, Session, Simulator, log

CRLF = b"\r\n"
TIE_TYPES = {"!": "All", "&": "RGB", "%": "Vid", "$": "Aud"}
COMMAND_CHARS = set("!&%$IQNVZB")
INTER_CHARACTER_TIMEOUT = 10.0
MAX_VOLUME = 100  # percent, in the `{n}V` form (0-64 steps belong to the per-output form)


@dataclass
class ExtronState:
    """What an Extron matrix switcher reports."""

    inputs: int = 4
    outputs: int = 4
    video: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    audio: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    volume: int = 50
    audio_mute: bool = False
    video_mute: bool = False
    model: str = "DXP 44 HDMI"
    part_number: str = "60-1064-01"
    firmware: str = "1.05"


class ExtronError(Exception):
    """An SIS error response."""

    def __init__(self, code: int) -> None:
        super().__init__(f"E{code:02d}")
        self.code = code


class ExtronSimulator(Simulator[ExtronState]):
    """An Extron DXP-style matrix switcher."""

    id = "extron-sis"
    title = "Extron matrix switcher (SIS)"
    document = "Extron DXP DVI/HDMI user guide, SIS Configuration and Control"
    tcp_port = 23
    serial = LineSettings(9600)

    def initial_state(self) -> ExtronState:
        """A 4x4 matrix with input 1 on every output."""
        return ExtronState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """Banner on network connections; over serial it only comes at power-up."""
        return ExtronSession(self, link, banner=network)

    def banner(self) -> bytes:
        """The copyright banner and date line sent on connect."""
        state = self.state
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S")
        return (
            f"(c) Copyright 2011, Extron Electronics, {state.model}, "
            f"V{state.firmware}, {state.part_number}\r\n{now}\r\n"
        ).encode()

    def front_panel_tie(self, input_: int, output: int) -> None:
        """Someone pressed front-panel buttons: tie and report it to every client."""
        self.state.video[output - 1] = self.state.audio[output - 1] = input_
        self.broadcast(f"Out{output} In{input_} All".encode() + CRLF)

    def reconfig(self) -> None:
        """An input signal changed: every client is told `Reconfig`."""
        self.broadcast(b"Reconfig" + CRLF)

    def execute(self, command: str) -> str:
        """The response to one complete command (its last character is the command)."""
        try:
            return self._execute(command[:-1], command[-1])
        except ExtronError as error:
            return str(error)

    def _execute(self, args: str, char: str) -> str:
        state = self.state
        if char in TIE_TYPES:
            return self._tie(args, char)
        if char in "IQN" and not args:
            info = f"V{state.inputs}X{state.outputs} A{state.inputs}X{state.outputs}"
            return {"I": info, "Q": state.firmware, "N": state.part_number}[char]
        if char == "V":
            return self._volume(args)
        if char in "ZB":
            attribute = "audio_mute" if char == "Z" else "video_mute"
            prefix = "Amt" if char == "Z" else "Vmt"
            if args == "":
                return str(int(getattr(state, attribute)))
            if args not in ("0", "1"):
                raise ExtronError(13)
            setattr(state, attribute, args == "1")
            return f"{prefix}{args}"
        raise ExtronError(10)

    def _tie(self, args: str, char: str) -> str:
        state = self.state
        kind = TIE_TYPES[char]
        if "*" not in args:
            if not args.isdigit():
                raise ExtronError(10)
            number = int(args)
            if char == "!":
                return self._tie_all(number, kind)
            if not 1 <= number <= state.outputs:
                raise ExtronError(12)
            ties = state.audio if char == "$" else state.video
            return str(ties[number - 1])
        source, _, output = args.partition("*")
        if not source.isdigit() or not (output.isdigit() or output == ""):
            raise ExtronError(10)
        if output == "":
            return self._tie_all(int(source), kind)
        input_, out = int(source), int(output)
        if input_ > state.inputs:
            raise ExtronError(1)
        if not 1 <= out <= state.outputs:
            raise ExtronError(12)
        if char in "!&%":
            state.video[out - 1] = input_
        if char in "!$":
            state.audio[out - 1] = input_
        return f"Out{out} In{input_} {kind}"

    def _tie_all(self, input_: int, kind: str) -> str:
        state = self.state
        if input_ > state.inputs:
            raise ExtronError(1)
        for index in range(state.outputs):
            if kind != "Aud":
                state.video[index] = input_
            if kind in ("All", "Aud"):
                state.audio[index] = input_
        return f"In{input_} {kind}"

    def _volume(self, args: str) -> str:
        state = self.state
        if args == "":
            return str(state.volume)
        if args in ("+", "-"):
            target = state.volume + (1 if args == "+" else -1)
        elif args.isdigit():
            target = int(args)
        else:
            raise ExtronError(13)
        if not 0 <= target <= MAX_VOLUME:
            raise ExtronError(13)
        state.volume = target
        return f"Vol{target}"


class ExtronSession(Session):
    """Character-driven SIS parsing: a command runs when its command character arrives."""

    sim: ExtronSimulator

    def __init__(self, sim: ExtronSimulator, link: Link, *, banner: bool) -> None:
        super().__init__(sim, link)
        self.banner = banner
        self._partial = ""
        self._last = 0.0

    def connection_made(self) -> None:
        """Send the copyright banner (network only)."""
        if self.banner:
            self.send(self.sim.banner())

    def data_received(self, data: bytes) -> None:
        """Collect characters; CR and LF are ignored."""
        now = time.monotonic()
        if self._partial and now - self._last > self.sim.scaled(INTER_CHARACTER_TIMEOUT):
            log.debug("%s %r timed out between characters", self.sim.id, self._partial)
            self._partial = ""
        self._last = now
        for char in data.decode("latin-1"):
            if self._closed:
                return
            if char in "\r\n":
                continue
            self._partial += char
            if char.upper() in COMMAND_CHARS:
                command, self._partial = self._partial, ""
                self.dispatch(command.encode("latin-1"))
            elif len(self._partial) > 32:
                self._partial = ""

    def answer(self, request: bytes) -> bytes | None:
        """`1*2!` -> `Out2 In1 All`."""
        text = request.decode("latin-1")
        return self.sim.execute(text[:-1] + text[-1].upper()).encode() + CRLF

    def busy_answer(self, request: bytes) -> bytes | None:
        """E22: busy."""
        return b"E22" + CRLF
