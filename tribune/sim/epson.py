"""Epson projector speaking ESC/VP21, on RS-232 (9600 8N1) or ESC/VP.net (TCP 3629).

Follows Epson's "ESC/VP21 Command User's Guide" and the ESC/VP21 command lists in Epson
projector manuals (EB-Z10005U, EB-440W):

- a command ends with CR; the projector answers with the `:` prompt when ready: a query
  `PWR?` gets `PWR=01\\r:`, a set gets `:`, an invalid command gets `ERR\\r:`, a lone CR `:`;
- PWR? is 00 standby (network off), 01 on, 02 warming up, 03 cooling down, 04 standby
  (network on), 05 abnormal standby; while warming or cooling, commands other than the status
  queries are refused with `ERR`;
- the `:` after `PWR ON` comes only once the lamp is lit ("returns a colon within 40 seconds",
  guide section 5.2, note 1), and after `PWR OFF` once the projector has stopped (the
  "execution time" of that table); the projector reads no further command before it, so one
  sent meanwhile is answered after the colon (another connection is refused with `ERR`);
- on TCP the client first sends the 16-byte ESC/VP.net header: `ESC/VP.net`, version 0x10,
  type 0x03 (CONNECT), two reserved bytes, status 0x00, header count; each extra header is
  18 bytes (identifier, attribute, 16 bytes of data; identifier 0x01 is the password). The
  projector answers the same header with status 0x20 OK, 0x41 password required, 0x43 wrong
  password, 0x55 version not supported, 0x40 bad request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tribune.sim.base import LineSession, LineSettings, Link, Power, Session, Simulator, log

SIGNATURE = b"ESC/VP.net"
VERSION = 0x10
CONNECT = 0x03
PASSWORD_HEADER = 0x01
STATUS_OK = 0x20
STATUS_BAD_REQUEST = 0x40
STATUS_UNAUTHORIZED = 0x41
STATUS_FORBIDDEN = 0x43
STATUS_VERSION = 0x55

PROMPT = b":"
ERROR = b"ERR\r:"
POWER_CODES = {Power.ON: "01", Power.WARMING: "02", Power.COOLING: "03"}
STATUS_QUERIES = ("PWR?", "LAMP?", "ERR?", "SNO?")


@dataclass
class EpsonState:
    """What an ESC/VP21 projector reports."""

    source: str = "30"
    sources: tuple[str, ...] = field(
        default_factory=lambda: ("10", "11", "14", "1F", "20", "30", "41", "52", "53", "80", "A0")
    )
    mute: bool = False
    freeze: bool = False
    volume: int = 120
    lamp_hours: int = 1500
    error: str = "00"
    network_standby: bool = True
    abnormal: bool = False
    serial_number: str = "X4K9123456L"


class EpsonSimulator(Simulator[EpsonState]):
    """An Epson projector (ESC/VP21 over serial or ESC/VP.net)."""

    id = "epson-escvp21"
    title = "Epson projector (ESC/VP21, ESC/VP.net)"
    document = "Epson ESC/VP21 Command User's Guide; ESC/VP.net protocol"
    tcp_port = 3629
    serial = LineSettings(9600)
    warm_up = 30.0
    cool_down = 20.0
    accepts_password = True

    def initial_state(self) -> EpsonState:
        """Standby (network on), HDMI selected."""
        return EpsonState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """ESC/VP.net handshake first on TCP; plain ESC/VP21 on serial."""
        return EpsonSession(self, link, handshake=network)

    def execute(self, line: str) -> str | None:
        """The reply body (before the prompt) to one command; None for a bare `:`."""
        text = line.strip().upper()
        if not text:
            return None
        state, power = self.state, self.power.state
        if text == "PWR?":
            if power is Power.OFF:
                code = "05" if state.abnormal else ("04" if state.network_standby else "00")
            else:
                code = POWER_CODES[power]
            return f"PWR={code}"
        if text == "LAMP?":
            return f"LAMP={state.lamp_hours}"
        if text == "ERR?":
            return f"ERR={state.error}"
        if text == "SNO?":
            return f"SNO={state.serial_number}"
        if text in ("PWR ON", "PWR OFF"):
            return self._power(on=text == "PWR ON")
        # Warming, cooling and standby: everything else is refused.
        if power is not Power.ON:
            return "ERR"
        return self._setting(text)

    def _power(self, *, on: bool) -> str | None:
        power = self.power.state
        if on:
            if power is Power.COOLING:
                return "ERR"
            if power is Power.OFF:
                self.power.turn_on()
            return None
        if power is Power.WARMING:
            return "ERR"
        if power is Power.ON:
            self.power.turn_off()
        return None

    def _setting(self, text: str) -> str | None:
        state = self.state
        name, _, value = text.partition(" ")
        if name.endswith("?") and not value:
            queries = {
                "SOURCE?": state.source,
                "MUTE?": "ON" if state.mute else "OFF",
                "FREEZE?": "ON" if state.freeze else "OFF",
                "VOL?": str(state.volume),
            }
            answer = queries.get(name)
            return "ERR" if answer is None else f"{name[:-1]}={answer}"
        if name == "SOURCE" and value in state.sources:
            state.source = value
        elif name == "MUTE" and value in ("ON", "OFF"):
            state.mute = value == "ON"
        elif name == "FREEZE" and value in ("ON", "OFF"):
            state.freeze = value == "ON"
        elif name == "VOL" and (volume := _volume(state.volume, value)) is not None:
            state.volume = volume
        else:
            return "ERR"
        return None


def _volume(current: int, value: str) -> int | None:
    """The new volume for `VOL <value>` (0-255, INC, DEC, INIT), None when invalid."""
    steps = {"INC": current + 1, "DEC": current - 1, "INIT": 120}
    if value in steps:
        return max(0, min(255, steps[value]))
    if value.isdigit() and int(value) <= 255:
        return int(value)
    return None


class EpsonSession(LineSession):
    """One ESC/VP21 conversation, behind the ESC/VP.net handshake on TCP."""

    sim: EpsonSimulator

    def __init__(self, sim: EpsonSimulator, link: Link, *, handshake: bool) -> None:
        super().__init__(sim, link)
        self.connected = not handshake
        self._header = b""
        self._held: asyncio.TimerHandle | None = None
        self._backlog: list[bytes] = []

    def dispatch(self, request: bytes) -> None:
        """Commands that arrive while a power change runs wait for its colon."""
        if self._held is not None:
            self._backlog.append(request)
            return
        super().dispatch(request)

    def connection_lost(self) -> None:
        """Forget a pending colon."""
        if self._held is not None:
            self._held.cancel()
            self._held = None
        super().connection_lost()

    def _release(self) -> None:
        self._held = None
        self.send(PROMPT)
        backlog, self._backlog = self._backlog, []
        for request in backlog:
            self.dispatch(request)

    def data_received(self, data: bytes) -> None:
        """Handshake bytes first (TCP), then CR-terminated commands."""
        if self.connected:
            super().data_received(data)
            return
        self._header += data
        rest = self._handshake()  # non-empty only once connected
        if rest:
            super().data_received(rest)

    def _handshake(self) -> bytes:
        """Consume one ESC/VP.net header if complete; returns the bytes after it."""
        buffer = self._header
        if len(buffer) < 16:
            if not SIGNATURE.startswith(buffer[: len(SIGNATURE)]):
                self.hang_up()
            return b""
        if not buffer.startswith(SIGNATURE):
            log.debug("%s not an ESC/VP.net header: %r", self.sim.id, buffer[:16])
            self.hang_up()
            return b""
        size = 16 + 18 * buffer[15]
        if len(buffer) < size:
            return b""
        header, rest = buffer[:size], buffer[size:]
        self._header = b""
        status = self._check(header)
        self.send(SIGNATURE + bytes([VERSION, CONNECT, 0, 0, status, 0]))
        if status == STATUS_OK:
            self.connected = True
            return rest
        if status != STATUS_UNAUTHORIZED:
            self.close_after_send()
        else:
            self._header = rest
        return b""

    def _check(self, header: bytes) -> int:
        log.debug("%s <- ESC/VP.net %r", self.sim.id, header)
        if header[10] != VERSION:
            return STATUS_VERSION
        if header[11] != CONNECT:
            return STATUS_BAD_REQUEST
        password = None
        for offset in range(16, len(header), 18):
            if header[offset] == PASSWORD_HEADER:
                password = header[offset + 2 : offset + 18].rstrip(b"\x00").decode("latin-1")
        if self.sim.password is None:
            return STATUS_OK
        if password is None:
            return STATUS_UNAUTHORIZED
        return STATUS_OK if password == self.sim.password else STATUS_FORBIDDEN

    def answer(self, request: bytes) -> bytes | None:
        """`PWR?` -> `PWR=01\\r:`; a set -> `:`; refused -> `ERR\\r:`; power: `:` when done."""
        before = self.sim.power.state
        body = self.sim.execute(request.decode("ascii", "replace"))
        power = self.sim.power
        if body is None and power.state is not before and power.remaining > 0:
            loop = asyncio.get_running_loop()
            self._held = loop.call_later(power.remaining, self._release)
            return None
        return PROMPT if body is None else body.encode() + b"\r" + PROMPT

    def busy_answer(self, request: bytes) -> bytes | None:
        """Epson's busy is the plain error."""
        return ERROR
