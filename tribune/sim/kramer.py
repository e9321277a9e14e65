"""Kramer matrix switcher speaking Protocol 3000, on RS-232 (115200 8N1) or TCP 5000.

Follows the "Kramer Protocol 3000" chapter of Kramer user manuals (VP-4x4K, VS-88HN,
KIT-400R command list):

- host message `#[<id>@]<COMMAND> <param>,<param>|<COMMAND>...<CR>`; LF is ignored;
  commands are case-insensitive, responses use upper case;
- device message `~<id>@<COMMAND> <params> <result><CR><LF>`, with machine number 01:
  `#<CR>` -> `~01@ OK`, `#VID 1>2` -> `~01@VID 1>2 OK`, `#VID? 2` -> `~01@VID 1>2`;
- errors `~01@<COMMAND> ERR <code>`: 001 syntax, 002 command not available, 003 parameter
  out of range, 006 busy;
- front-panel switching is reported unsolicited (`~01@VID 1>2`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tribune.sim.base import LineSession, LineSettings, Link, Session, Simulator

CRLF = b"\r\n"
SYNTAX, NOT_AVAILABLE, OUT_OF_RANGE, BUSY = "001", "002", "003", "006"


@dataclass
class KramerState:
    """What a Kramer switcher reports."""

    machine: int = 1
    inputs: int = 4
    outputs: int = 4
    video: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    audio: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    levels: list[int] = field(default_factory=lambda: [50, 50, 50, 50])
    mutes: list[bool] = field(default_factory=lambda: [False] * 4)
    model: str = "VS-44H2"
    version: str = "1.12.0152"
    serial_number: str = "01234567890123"


class KramerError(Exception):
    """A Protocol 3000 error code."""


class KramerSimulator(Simulator[KramerState]):
    """A Kramer Protocol 3000 matrix switcher."""

    id = "kramer-p3000"
    title = "Kramer matrix switcher (Protocol 3000)"
    document = "Kramer Protocol 3000 (VP-4x4K, VS-88HN user manuals)"
    tcp_port = 5000
    serial = LineSettings(115200)

    def initial_state(self) -> KramerState:
        """A 4x4 matrix, input 1 on every output."""
        return KramerState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """Same syntax on TCP and serial."""
        return KramerSession(self, link)

    @property
    def prefix(self) -> str:
        """`~01@`."""
        return f"~{self.state.machine:02d}@"

    def front_panel_switch(self, input_: int, output: int) -> None:
        """Someone switched on the front panel: tie and report it."""
        self.state.video[output - 1] = self.state.audio[output - 1] = input_
        self.broadcast(f"{self.prefix}AV {input_}>{output}".encode() + CRLF)

    def execute(self, command: str, params: str) -> str:
        """The response body (after `~01@`) to one command."""
        if command == "":
            return " OK"
        handler = COMMANDS.get(command)
        if handler is None:
            return f"{command} ERR {NOT_AVAILABLE}"
        try:
            return handler(self, command, params)
        except KramerError as error:
            return f"{command} ERR {error}"

    def route(self, command: str, params: str) -> str:
        """VID / AUD / AV: `in>out,in>out`."""
        ties = []
        for pair in params.split(","):
            source, sep, target = pair.strip().partition(">")
            if not sep or not source.isdigit() or not target.isdigit():
                raise KramerError(SYNTAX)
            input_, output = int(source), int(target)
            if input_ > self.state.inputs or not 1 <= output <= self.state.outputs:
                raise KramerError(OUT_OF_RANGE)
            ties.append((input_, output))
        for input_, output in ties:
            if command in ("VID", "AV"):
                self.state.video[output - 1] = input_
            if command in ("AUD", "AV"):
                self.state.audio[output - 1] = input_
        return f"{command} {params.replace(' ', '')} OK"

    def route_query(self, command: str, params: str) -> str:
        """VID? / AUD?: `out` or `*`."""
        ties = self.state.audio if command == "AUD?" else self.state.video
        outputs = range(1, self.state.outputs + 1) if params == "*" else [_number(params)]
        if any(not 1 <= output <= self.state.outputs for output in outputs):
            raise KramerError(OUT_OF_RANGE)
        listed = ",".join(f"{ties[output - 1]}>{output}" for output in outputs)
        return f"{command[:-1]} {listed}"

    def level(self, command: str, params: str) -> str:
        """AUD-LVL 1,<out>,<0-100|++|-->."""
        mode, index, value = _fields(params, 3)
        output = self._output(mode, index)
        current = self.state.levels[output - 1]
        steps = {"++": current + 1, "--": current - 1}
        target = steps[value] if value in steps else _number(value)
        if not 0 <= target <= 100:
            raise KramerError(OUT_OF_RANGE)
        self.state.levels[output - 1] = target
        return f"AUD-LVL 1,{output},{target} OK"

    def level_query(self, command: str, params: str) -> str:
        """AUD-LVL? 1,<out>."""
        mode, index = _fields(params, 2)
        output = self._output(mode, index)
        return f"AUD-LVL 1,{output},{self.state.levels[output - 1]}"

    def mute(self, command: str, params: str) -> str:
        """MUTE <out>,<0|1>."""
        index, value = _fields(params, 2)
        output = self._output("1", index)
        if value not in ("0", "1"):
            raise KramerError(OUT_OF_RANGE)
        self.state.mutes[output - 1] = value == "1"
        return f"MUTE {output},{value} OK"

    def mute_query(self, command: str, params: str) -> str:
        """MUTE? <out>."""
        output = self._output("1", params.strip())
        return f"MUTE {output},{int(self.state.mutes[output - 1])}"

    def identity(self, command: str, params: str) -> str:
        """MODEL? / VERSION? / SN?."""
        values = {
            "MODEL?": self.state.model,
            "VERSION?": self.state.version,
            "SN?": self.state.serial_number,
        }
        return f"{command[:-1]} {values[command]}"

    def _output(self, mode: str, index: str) -> int:
        if mode != "1":
            raise KramerError(OUT_OF_RANGE)
        output = _number(index)
        if not 1 <= output <= self.state.outputs:
            raise KramerError(OUT_OF_RANGE)
        return output


def _number(text: str) -> int:
    if not text.strip().isdigit():
        raise KramerError(SYNTAX)
    return int(text)


def _fields(params: str, count: int) -> list[str]:
    fields = [part.strip() for part in params.split(",")]
    if len(fields) != count:
        raise KramerError(SYNTAX)
    return fields


COMMANDS = {
    "VID": KramerSimulator.route,
    "AUD": KramerSimulator.route,
    "AV": KramerSimulator.route,
    "VID?": KramerSimulator.route_query,
    "AUD?": KramerSimulator.route_query,
    "AUD-LVL": KramerSimulator.level,
    "AUD-LVL?": KramerSimulator.level_query,
    "MUTE": KramerSimulator.mute,
    "MUTE?": KramerSimulator.mute_query,
    "MODEL?": KramerSimulator.identity,
    "VERSION?": KramerSimulator.identity,
    "SN?": KramerSimulator.identity,
}


class KramerSession(LineSession):
    """CR-terminated Protocol 3000 messages; one response per chained command."""

    sim: KramerSimulator

    def answer(self, request: bytes) -> bytes | None:
        """`#VID 1>2` -> `~01@VID 1>2 OK`."""
        text = request.decode("latin-1").strip()
        if not text.startswith("#"):
            return None
        body = text[1:]
        address, at, rest = body.partition("@")
        if at:
            if not address.isdigit() or int(address) != self.sim.state.machine:
                return None  # addressed to another machine on the bus
            body = rest
        replies = []
        for part in body.split("|"):
            command, _, params = part.strip().partition(" ")
            reply = self.sim.execute(command.upper(), params.strip())
            replies.append(self.sim.prefix.encode() + reply.encode() + CRLF)
        return b"".join(replies)

    def busy_answer(self, request: bytes) -> bytes | None:
        """ERR 006: busy."""
        text = request.decode("latin-1").strip()
        command = text[1:].partition(" ")[0].upper()
        return f"{self.sim.prefix}{command} ERR {BUSY}".encode() + CRLF
