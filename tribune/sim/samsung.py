"""Samsung display speaking MDC (Multiple Display Control), on RS-232 (9600 8N1) or TCP 1515.

Follows Samsung's "MDC Protocol" specification and the RS232C/LAN control chapter of Samsung
signage manuals (PM49F, QM43B-T, MD40B):

- request: 0xAA <command> <id> <length> <data...> <checksum>, the checksum being the low byte
  of the sum of every byte but the 0xAA header; a frame with a bad checksum, or for another
  display id, is ignored; id 0xFE is broadcast and is not answered;
- ACK: 0xAA 0xFF <id> <length> 'A' <r-cmd> <values...> <checksum>;
  NAK: 0xAA 0xFF <id> 0x03 'N' <r-cmd> <error code> <checksum>;
- 0x00 status (power, volume, mute, input, aspect, N time NF, F time NF), 0x11 power
  (0 off, 1 on, 2 reboot), 0x12 volume 0-100, 0x13 mute, 0x14 input source, 0x0B serial
  number, 0x0E software version, 0x8A model name.

The specification shows NAK with an "ERR" code but lists no codes: this simulator uses 0x01.
While the display is off, booting or shutting down, only power and status are answered; other
commands are NAKed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tribune.sim.base import LineSettings, Link, Power, Session, Simulator, log, sum8

HEADER = 0xAA
REPLY = 0xFF
ACK = ord("A")
NAK = ord("N")
BROADCAST = 0xFE
ERROR = 0x01

STATUS, SERIAL, SOFTWARE, POWER, VOLUME, MUTE, INPUT, MODEL = (
    0x00,
    0x0B,
    0x0E,
    0x11,
    0x12,
    0x13,
    0x14,
    0x8A,
)
INPUTS = {0x14: "PC", 0x18: "DVI", 0x0C: "AV", 0x21: "HDMI1", 0x23: "HDMI2", 0x25: "DP"}


@dataclass
class SamsungState:
    """What a Samsung MDC display reports."""

    display_id: int = 0x01
    volume: int = 20
    mute: bool = False
    input: int = 0x21
    inputs: dict[int, str] = field(default_factory=lambda: dict(INPUTS))
    aspect: int = 0x10
    serial_number: str = "0DQV3CAK500123"
    software_version: str = "S-MSR8ELAA-1042.0"
    model: str = "QM43B-T"


class SamsungSimulator(Simulator[SamsungState]):
    """A Samsung signage display (MDC)."""

    id = "samsung-mdc"
    title = "Samsung display (MDC)"
    document = "Samsung MDC Protocol specification; PM49F/QM43B-T manuals"
    tcp_port = 1515
    serial = LineSettings(9600)
    warm_up = 8.0
    cool_down = 3.0

    def initial_state(self) -> SamsungState:
        """Off, HDMI 1, id 1."""
        return SamsungState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """Same frames on TCP and serial."""
        return SamsungSession(self, link)

    def ack(self, command: int, values: bytes) -> bytes:
        """An ACK frame."""
        return self._reply(bytes([ACK, command]) + values)

    def nak(self, command: int, code: int = ERROR) -> bytes:
        """A NAK frame."""
        return self._reply(bytes([NAK, command, code]))

    def _reply(self, data: bytes) -> bytes:
        body = bytes([REPLY, self.state.display_id, len(data)]) + data
        return bytes([HEADER]) + body + bytes([sum8(body)])

    def execute(self, command: int, data: bytes) -> bytes:
        """The ACK or NAK to one request."""
        state, power = self.state, self.power.state
        if command == STATUS and not data:
            return self.ack(command, self._status())
        if command == POWER:
            return self._power(data)
        if command in (SERIAL, SOFTWARE, MODEL) and not data:
            text = {SERIAL: state.serial_number, SOFTWARE: state.software_version}
            return self.ack(command, text.get(command, state.model).encode())
        if command not in (VOLUME, MUTE, INPUT):
            return self.nak(command)
        if power is not Power.ON:
            return self.nak(command)
        attribute = {VOLUME: "volume", MUTE: "mute", INPUT: "input"}[command]
        if data:
            value = data[0]
            valid = {
                VOLUME: len(data) == 1 and value <= 100,
                MUTE: len(data) == 1 and value <= 1,
                INPUT: len(data) == 1 and value in state.inputs,
            }[command]
            if not valid:
                return self.nak(command)
            setattr(state, attribute, bool(value) if command == MUTE else value)
        return self.ack(command, bytes([int(getattr(state, attribute))]))

    def _status(self) -> bytes:
        state = self.state
        on = self.power.state in (Power.ON, Power.WARMING)
        return bytes([int(on), state.volume, int(state.mute), state.input, state.aspect, 0, 0])

    def _power(self, data: bytes) -> bytes:
        power = self.power.state
        if data:
            if len(data) != 1 or data[0] > 2:
                return self.nak(POWER)
            wanted = data[0]
            if wanted == 0 and power in (Power.ON, Power.WARMING):
                self.power.turn_off()
            elif wanted == 1 and power in (Power.OFF, Power.COOLING):
                self.power.turn_on()
            elif wanted == 2:
                self.power.force(Power.WARMING)
            return self.ack(POWER, bytes([min(wanted, 1)]))
        return self.ack(POWER, bytes([int(power in (Power.ON, Power.WARMING))]))


class SamsungSession(Session):
    """Frames MDC requests by their length byte."""

    sim: SamsungSimulator

    def __init__(self, sim: SamsungSimulator, link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        """Collect frames; skip to the next 0xAA on garbage."""
        self._buffer += data
        while self._buffer and not self._closed:
            start = self._buffer.find(bytes([HEADER]))
            if start < 0:
                self._buffer = b""
                return
            self._buffer = self._buffer[start:]
            if len(self._buffer) < 4:
                return
            size = 5 + self._buffer[3]
            if len(self._buffer) < size:
                return
            request = self._buffer[:size]
            if sum8(request[1:-1]) != request[-1]:
                log.debug("%s bad checksum, ignored: %s", self.sim.id, request.hex(" "))
                self._buffer = self._buffer[1:]
                continue
            self._buffer = self._buffer[size:]
            if request[2] == self.sim.state.display_id:
                self.dispatch(request)
            elif request[2] == BROADCAST:
                self.sim.execute(request[1], request[4:-1])

    def answer(self, request: bytes) -> bytes | None:
        """ACK or NAK."""
        return self.sim.execute(request[1], request[4:-1])

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: NAK."""
        return self.sim.nak(request[1])
