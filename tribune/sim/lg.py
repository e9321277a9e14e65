"""LG commercial display (signage), RS-232C control (9600 8N1) or TCP 9761.

Follows the "Controlling the multiple product" / "Transmission / Receiving protocol" chapter
of LG signage owner's manuals (49SH7DB, 55LS55A, M4716C) and LG TV manuals (42LK550):

- transmission `[Command1][Command2][ ][Set ID][ ][Data][Cr]`, e.g. `ka 01 01\\r`; set id
  and data are hexadecimal; set id 00 controls every connected set (each one answers);
  data `FF` reads the current status;
- OK acknowledgement `[Command2][ ][Set ID][ ][OK][Data][x]` (`a 01 OK01x`), with the set
  id and data in lower case; a write echoes the data written, a read gives the status;
- error acknowledgement `[Command2][ ][Set ID][ ][NG][Data][x]`, data 01 illegal code,
  02 not supported function, 03 wait more time;
- ka power (00 off, 01 on), xb input (20 AV, 40 component, 60 RGB, 70 DVI-D PC, 80 DVI-D DTV,
  90 HDMI1 DTV, a0 HDMI1 PC, 91 HDMI2 DTV, a1 HDMI2 PC, 92 OPS/HDMI3 DTV, a2 OPS/HDMI3 PC,
  c0 DisplayPort DTV, d0 DisplayPort PC), kf volume (00-64), ke volume mute (00 mute on,
  01 mute off), kd screen mute (00 screen on, 01 screen mute on), fy serial number (FF reads).

The manuals say only the power command works in standby but not what the set answers: this
simulator answers NG01 there, and NG03 (wait more time) to everything but power during its boot
and shutdown and when busy; `ka ff` reports the state being reached (01 while booting, 00
while shutting down), as the manuals know no transition state. A line for another set id is
ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.sim.base import LineSession, LineSettings, Link, Power, Session, Simulator

ILLEGAL_CODE, NOT_SUPPORTED, WAIT_MORE = 0x01, 0x02, 0x03
READ = 0xFF
ALL_SETS = 0x00
INPUTS = {
    0x20: "AV",
    0x40: "COMPONENT",
    0x60: "RGB",
    0x70: "DVI-D (PC)",
    0x80: "DVI-D (DTV)",
    0x90: "HDMI1 (DTV)",
    0xA0: "HDMI1 (PC)",
    0x91: "HDMI2 (DTV)",
    0xA1: "HDMI2 (PC)",
    0x92: "OPS/HDMI3 (DTV)",
    0xA2: "OPS/HDMI3 (PC)",
    0xC0: "DISPLAYPORT (DTV)",
    0xD0: "DISPLAYPORT (PC)",
}


@dataclass
class LgState:
    """What an LG signage display reports."""

    set_id: int = 0x01
    input: int = 0x90
    inputs: dict[int, str] = field(default_factory=lambda: dict(INPUTS))
    volume: int = 20
    volume_mute: bool = False
    screen_mute: bool = False
    serial_number: str = "105KRAB12345"


class LgError(Exception):
    """An NG acknowledgement with its data code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"NG{code:02x}")
        self.code = code


class LgSimulator(Simulator[LgState]):
    """An LG signage display."""

    id = "lg-display"
    title = "LG commercial display (RS-232C / TCP 9761)"
    document = "LG signage owner's manual, RS-232C transmission / receiving protocol"
    tcp_port = 9761
    serial = LineSettings(9600)
    warm_up = 8.0
    cool_down = 2.0

    def initial_state(self) -> LgState:
        """Off, HDMI1, set id 1."""
        return LgState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """The same lines on TCP and serial."""
        return LgSession(self, link)

    def acknowledge(self, command2: str, data: int | str, ok: bool = True) -> bytes:
        """`a 01 OK01x` or `a 01 NG01x`; text data (the serial number) is sent as it is."""
        status = "OK" if ok else "NG"
        text = data if isinstance(data, str) else f"{data:02x}"
        return f"{command2} {self.state.set_id:02x} {status}{text}x".encode()

    def execute(self, command: str, data: int) -> int | str:
        """The data of the OK acknowledgement; raises LgError for NG."""
        if command == "ka":
            return self._power(data)
        if command == "fy" and data == READ:
            return self.state.serial_number
        if command not in SETTINGS:
            raise LgError(ILLEGAL_CODE)
        power = self.power.state
        if power in (Power.WARMING, Power.COOLING):
            raise LgError(WAIT_MORE)
        if power is Power.OFF:
            raise LgError(ILLEGAL_CODE)
        attribute, valid = SETTINGS[command]
        state = self.state
        if data == READ:
            return _encode(command, getattr(state, attribute))
        if not valid(self, data):
            raise LgError(ILLEGAL_CODE)
        setattr(state, attribute, _decode(command, data))
        return data

    def _power(self, data: int) -> int:
        power = self.power.state
        if data == READ:
            return int(power in (Power.ON, Power.WARMING))
        if data not in (0x00, 0x01):
            raise LgError(ILLEGAL_CODE)
        if data == 0x01:
            if power is Power.COOLING:
                raise LgError(WAIT_MORE)
            if power is Power.OFF:
                self.power.turn_on()
        else:
            if power is Power.WARMING:
                raise LgError(WAIT_MORE)
            if power is Power.ON:
                self.power.turn_off()
        return data


def _encode(command: str, value: int | bool) -> int:
    """State to wire data: ke is inverted (00 means muted)."""
    if command == "ke":
        return 0x00 if value else 0x01
    return int(value)


def _decode(command: str, data: int) -> int | bool:
    if command == "ke":
        return data == 0x00
    if command == "kd":
        return data == 0x01
    return data


Validator = Callable[[LgSimulator, int], bool]

SETTINGS: dict[str, tuple[str, Validator]] = {
    "xb": ("input", lambda sim, data: data in sim.state.inputs),
    "kf": ("volume", lambda sim, data: data <= 0x64),
    "ke": ("volume_mute", lambda sim, data: data in (0x00, 0x01)),
    "kd": ("screen_mute", lambda sim, data: data in (0x00, 0x01)),
}


class LgSession(LineSession):
    """CR-terminated commands, `x`-terminated acknowledgements."""

    sim: LgSimulator

    def answer(self, request: bytes) -> bytes | None:
        """`ka 01 01` -> `a 01 OK01x`."""
        parts = request.decode("latin-1").split()
        if len(parts) != 3 or len(parts[0]) != 2:
            return None  # not a command line: a real set ignores it
        command, set_id, data = parts[0].lower(), _hex(parts[1]), _hex(parts[2])
        if set_id is None or set_id not in (ALL_SETS, self.sim.state.set_id):
            return None
        command2 = command[1]
        if data is None:
            return self.sim.acknowledge(command2, ILLEGAL_CODE, ok=False)
        try:
            return self.sim.acknowledge(command2, self.sim.execute(command, data))
        except LgError as error:
            return self.sim.acknowledge(command2, error.code, ok=False)

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: NG03, wait more time."""
        parts = request.decode("latin-1").split()
        command2 = parts[0][-1:].lower() if parts else "a"
        return self.sim.acknowledge(command2, WAIT_MORE, ok=False)


def _hex(text: str) -> int | None:
    try:
        value = int(text, 16)
    except ValueError:
        return None
    return value if 0 <= value <= 0xFF else None
