"""Panasonic projector, RS-232C control (9600 8N1), also on a raw TCP socket.

Follows "Panasonic Projector RS-232C Control Specifications" (PT-DW10000/D10000,
PT-DZ12000, PT-FW100NT/F100) and the "Control commands" table of Panasonic operating
instructions (PT-DZ770, PT-DW740, PT-JX200):

- a command is STX (02h), the ID, `;`, a 3-character command, optional `:` and parameters,
  ETX (03h); the ID `ADZZ` addresses all projectors, `AD01`..`AD64` one of them (older models
  take no ID at all); the projector answers only when the ID is its own or ALL;
- the response (callback) is STX ... ETX: `PON` -> `PON`, `POF` -> `POF`, `QPW` -> `000`
  standby / `001` power on, `IIS:HD1` -> `IIS:HD1`, `QIN` -> `HD1`, `OSH:1` -> `OSH:1`
  (shutter / AV mute), `QSH` -> `0`/`1`, `OFZ:1`/`QFZ` freeze, `AMT:1`/`QAM` audio mute,
  `AVL:032`/`QAV` volume, `Q$L` or `Q$L:1` -> lamp runtime in hours (4 digits), `Q$S` lamp
  status (0 standby, 1 lamp on control, 2 lamp on, 3 lamp off control);
- in the period when a command cannot be accepted the answer is `ER401`; a parameter error
  answers `ER402`; input, shutter and volume are not accepted in standby ("STNDBY: No").

Where the documents are silent: `QPW` answers `001` from PON (warm-up included) and `000`
from POF (cool-down included); PON during cool-down and POF during warm-up are refused with
ER401, and so is every command while the simulated projector is busy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tribune.sim.base import LineSettings, Link, Power, Session, Simulator, log

STX, ETX = b"\x02", b"\x03"
CANNOT_EXECUTE = "ER401"
PARAMETER_ERROR = "ER402"
INPUTS = ("RG1", "RG2", "VID", "SVD", "DVI", "HD1", "HD2", "SD1", "DL1")
QUERIES_IN_STANDBY = ("QPW", "QIN", "QSH", "QFZ", "QAM", "QAV", "Q$L", "Q$S")
SWITCHES = {"OSH": "shutter", "OFZ": "freeze", "AMT": "audio_mute"}
SWITCH_QUERIES = {"QSH": "shutter", "QFZ": "freeze", "QAM": "audio_mute"}
LAMP_STATUS = {Power.OFF: "0", Power.WARMING: "1", Power.ON: "2", Power.COOLING: "3"}


@dataclass
class PanasonicState:
    """What a Panasonic projector reports."""

    projector_id: int = 1
    input: str = "HD1"
    inputs: tuple[str, ...] = field(default_factory=lambda: INPUTS)
    shutter: bool = False
    freeze: bool = False
    audio_mute: bool = False
    volume: int = 32
    lamp_hours: int = 1234


class PanasonicSimulator(Simulator[PanasonicState]):
    """A Panasonic PT-series projector."""

    id = "panasonic-projector"
    title = "Panasonic projector (RS-232C control)"
    document = "Panasonic Projector RS-232C Control Specifications (PT-DW10000, PT-DZ12000)"
    tcp_port = None
    serial = LineSettings(9600)
    warm_up = 30.0
    cool_down = 60.0

    def initial_state(self) -> PanasonicState:
        """Standby, HDMI."""
        return PanasonicState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """The same frames on a serial-over-IP socket and on the pty."""
        return PanasonicSession(self, link)

    def addressed(self, ident: str) -> bool:
        """True when `ident` (ADZZ, AD01...) selects this projector."""
        if ident == "ADZZ":
            return True
        return ident == f"AD{self.state.projector_id:02d}"

    def execute(self, command: str, parameter: str | None) -> str:
        """The response text (between STX and ETX) to one command."""
        power = self.power.state
        if command == "PON":
            if power is Power.COOLING:
                return CANNOT_EXECUTE
            if power is Power.OFF:
                self.power.turn_on()
            return "PON"
        if command == "POF":
            if power is Power.WARMING:
                return CANNOT_EXECUTE
            if power is Power.ON:
                self.power.turn_off()
            return "POF"
        if command == "QPW":
            return "001" if power in (Power.ON, Power.WARMING) else "000"
        if command in QUERIES_IN_STANDBY:
            return self._query(command, parameter)
        if command not in ("IIS", "AVL", *SWITCHES):
            return CANNOT_EXECUTE
        if power is not Power.ON:
            return CANNOT_EXECUTE
        return self._set(command, parameter)

    def _query(self, command: str, parameter: str | None) -> str:
        state = self.state
        if command == "Q$L":
            if parameter not in (None, "1"):
                return PARAMETER_ERROR
            return f"{min(state.lamp_hours, 9999):04d}"
        if command == "Q$S":
            return LAMP_STATUS[self.power.state]
        if command == "QIN":
            return state.input
        if command in SWITCH_QUERIES:
            return str(int(getattr(state, SWITCH_QUERIES[command])))
        return f"{state.volume:03d}"

    def _set(self, command: str, parameter: str | None) -> str:
        state = self.state
        if command == "IIS":
            if parameter not in state.inputs:
                return PARAMETER_ERROR
            state.input = parameter
            return f"IIS:{parameter}"
        if command in SWITCHES:
            if parameter not in ("0", "1"):
                return PARAMETER_ERROR
            setattr(state, SWITCHES[command], parameter == "1")
            return f"{command}:{parameter}"
        if parameter is None or not parameter.isdigit() or int(parameter) > 63:
            return PARAMETER_ERROR
        state.volume = int(parameter)
        return f"AVL:{state.volume:03d}"


class PanasonicSession(Session):
    """Frames STX ... ETX; bytes outside a frame are ignored."""

    sim: PanasonicSimulator
    max_frame = 64

    def __init__(self, sim: PanasonicSimulator, link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        """Collect frames."""
        self._buffer += data
        while not self._closed:
            start = self._buffer.find(STX)
            if start < 0:
                self._buffer = b""
                return
            self._buffer = self._buffer[start:]
            end = self._buffer.find(ETX)
            if end < 0:
                if len(self._buffer) > self.max_frame:
                    self._buffer = b""
                return
            body = self._buffer[1:end]
            self._buffer = self._buffer[end + 1 :]
            if STX in body:  # a frame restarted before its ETX: keep the last start
                body = body[body.rfind(STX) + 1 :]
            self._request(body)

    def _request(self, body: bytes) -> None:
        text = body.decode("latin-1")
        ident, sep, command = text.partition(";")
        if not sep:
            command, ident = ident, "ADZZ"  # older models take commands without an ID
        if not self.sim.addressed(ident):
            log.debug("%s not addressed to us: %r", self.sim.id, text)
            return
        self.dispatch(command.encode("latin-1"))

    def answer(self, request: bytes) -> bytes | None:
        """STX response ETX."""
        command, sep, parameter = request.decode("latin-1").partition(":")
        reply = self.sim.execute(command.upper(), parameter if sep else None)
        return STX + reply.encode("latin-1") + ETX

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: the command cannot be accepted now."""
        return STX + CANNOT_EXECUTE.encode() + ETX
