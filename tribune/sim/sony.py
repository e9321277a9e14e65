"""Sony projector, RS-232C simplified command protocol (38400 8E1), also on a raw TCP socket.

Follows Sony's VPL-series "Protocol Manual" (VPL-EW130/SX125/SW125 1st Edition Revised 1,
VPL-CX61...PX41 Revised 12, VPL-VW40/VW60, VPL-VW100): section "Command Block Format" and the
item tables "ITEM List" / Appendix Table 1-3:

- every block is 8 bytes: A9 <item hi> <item lo> <type> <data hi> <data lo> <check sum> 9A,
  type 00 SET or 01 GET (GET carries dummy data 00 00); the check sum is the OR of B1..B5;
- a SET is answered A9 00 00 03 00 00 03 9A (ACK) or A9 <NAK hi> <NAK lo> 03 00 00 <cs> 9A;
  a GET with data: A9 <item hi> <item lo> 02 <data hi> <data lo> <cs> 9A;
- NAK codes (Table 3): 01 01 undefined command, 01 04 size error, 01 05 select error,
  01 06 range over, 01 0A not applicable, F0 10 check sum error, F0 20 framing error,
  F0 30 parity error, F0 40 overrun error, F0 50 other communication error;
- items: 00 01 input (0000 video, 0001 S-video, 0002 input A, 0003 input B, 0004 input C,
  0005 input D), 00 16 volume 0-100, 00 30 picture muting (0000 off, 0001 on), 01 30 power
  (set only: 0000 off, 0001 on), 01 01 status error (bit field), 01 02 status power
  (0000 standby, 0001 start up, 0002 startup lamp, 0003 power on, 0004 cooling1,
  0005 cooling2, 0006/0007 saving cooling, 0008 saving standby), 01 13 lamp timer (hours),
  01 1D ROM version (01 03 = 1.03),
  17 xx SIRCS 15-bit category (17 2E power on, 17 2F power off, 17 15 power toggle);
- the await-return time is about 50 ms.

The manuals give no code for a busy projector nor say what a projector in standby answers to
picture commands: this simulator NAKs both with 01 0A (not applicable), and also NAKs power
on while cooling and power off while starting up. A frame that does not end in 9A is
discarded up to the next A9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.sim.base import LineSettings, Link, Power, Session, Simulator, log

START = 0xA9
END = 0x9A
SET, GET, REPLY, ACK_NAK = 0x00, 0x01, 0x02, 0x03

UNDEFINED = (0x01, 0x01)
SELECT_ERROR = (0x01, 0x05)
RANGE_OVER = (0x01, 0x06)
NOT_APPLICABLE = (0x01, 0x0A)
CHECKSUM_ERROR = (0xF0, 0x10)

INPUT, VOLUME, PICTURE_MUTING = 0x0001, 0x0016, 0x0030
STATUS_ERROR, STATUS_POWER, POWER, LAMP_TIMER = 0x0101, 0x0102, 0x0130, 0x0113
ROM_VERSION = 0x011D
SIRCS = 0x17
SIRCS_POWER, SIRCS_POWER_ON, SIRCS_POWER_OFF = 0x15, 0x2E, 0x2F

STANDBY, START_UP, START_UP_LAMP, POWER_ON, COOLING1, COOLING2 = range(6)
INPUTS = {0: "VIDEO", 1: "S VIDEO", 2: "INPUT A", 3: "INPUT B", 4: "INPUT C", 5: "INPUT D"}

Nak = tuple[int, int]


def checksum(block: bytes) -> int:
    """OR of B1..B5 (item, type, data)."""
    value = 0
    for byte in block[1:6]:
        value |= byte
    return value


def block(item: int, kind: int, data: int = 0) -> bytes:
    """One 8-byte block with its check sum."""
    body = bytes([START, item >> 8, item & 0xFF, kind, data >> 8, data & 0xFF])
    return body + bytes([checksum(body), END])


ACK = block(0x0000, ACK_NAK)


def nak(code: Nak) -> bytes:
    """A NAK block carrying `code`."""
    return block(code[0] << 8 | code[1], ACK_NAK)


@dataclass
class SonyState:
    """What a Sony VPL projector reports."""

    input: int = 2
    inputs: dict[int, str] = field(default_factory=lambda: dict(INPUTS))
    picture_muting: bool = False
    volume: int = 30
    lamp_hours: int = 1000
    errors: int = 0x0000
    rom_version: int = 0x0103


class SonySimulator(Simulator[SonyState]):
    """A Sony VPL data projector (simplified command over RS-232C)."""

    id = "sony-projector"
    title = "Sony projector (RS-232C simplified command)"
    document = "Sony VPL-series Protocol Manual (VPL-EW130, VPL-CX61, VPL-VW100)"
    tcp_port = None
    serial = LineSettings(38400, parity="E")
    warm_up = 40.0
    cool_down = 60.0

    def initial_state(self) -> SonyState:
        """Standby, input A."""
        return SonyState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """The same 8-byte blocks on a serial-over-IP socket and on the pty."""
        return SonySession(self, link)

    def status_power(self) -> int:
        """Item 01 02: the warm-up and cool-down are each split in two reported phases."""
        state = self.power.state
        if state is Power.OFF:
            return STANDBY
        if state is Power.ON:
            return POWER_ON
        first_half = self.power.remaining > (
            (self.power.warm_up if state is Power.WARMING else self.power.cool_down) / 2
        )
        if state is Power.WARMING:
            return START_UP if first_half else START_UP_LAMP
        return COOLING1 if first_half else COOLING2

    def execute(self, request: bytes) -> bytes:
        """The reply block to one well-formed request block."""
        item = request[1] << 8 | request[2]
        kind = request[3]
        data = request[4] << 8 | request[5]
        if kind not in (SET, GET):
            return nak(SELECT_ERROR)
        if request[1] == SIRCS:
            return self._sircs(request[2], kind)
        handler = ITEMS.get(item)
        if handler is None:
            return nak(UNDEFINED)
        result = handler(self, kind, data)
        if isinstance(result, tuple):
            return nak(result)
        if result is None:
            return ACK
        return block(item, REPLY, result)

    def power_item(self, kind: int, data: int) -> int | Nak | None:
        """01 30 POWER, set only."""
        if kind == GET:
            return NOT_APPLICABLE
        if data == 0x0001:
            return self._power_on()
        if data == 0x0000:
            return self._power_off()
        return RANGE_OVER

    def _power_on(self) -> Nak | None:
        state = self.power.state
        if state is Power.COOLING:
            return NOT_APPLICABLE
        if state is Power.OFF:
            self.power.turn_on()
        return None

    def _power_off(self) -> Nak | None:
        state = self.power.state
        if state is Power.WARMING:
            return NOT_APPLICABLE
        if state is Power.ON:
            self.power.turn_off()
        return None

    def _sircs(self, code: int, kind: int) -> bytes:
        """17 xx: a remote-control key; only the power keys are modelled."""
        if kind != SET:
            return nak(NOT_APPLICABLE)
        if code == SIRCS_POWER:
            on = self.power.state in (Power.OFF, Power.COOLING)
            result = self._power_on() if on else self._power_off()
        elif code == SIRCS_POWER_ON:
            result = self._power_on()
        elif code == SIRCS_POWER_OFF:
            result = self._power_off()
        elif self.power.is_on:
            result = None  # other keys act on the menu; nothing to model
        else:
            result = NOT_APPLICABLE
        return ACK if result is None else nak(result)

    def status_power_item(self, kind: int, data: int) -> int | Nak | None:
        """01 02 STATUS POWER, get only."""
        return self.status_power() if kind == GET else NOT_APPLICABLE

    def status_error_item(self, kind: int, data: int) -> int | Nak | None:
        """01 01 STATUS ERROR, get only."""
        return self.state.errors if kind == GET else NOT_APPLICABLE

    def lamp_timer_item(self, kind: int, data: int) -> int | Nak | None:
        """01 13 LAMP TIMER, get only: hours."""
        return min(self.state.lamp_hours, 0xFFFF) if kind == GET else NOT_APPLICABLE

    def rom_version_item(self, kind: int, data: int) -> int | Nak | None:
        """01 1D ROM VERSION, get only: 01 03 is version 1.03."""
        return self.state.rom_version if kind == GET else NOT_APPLICABLE

    def input_item(self, kind: int, data: int) -> int | Nak | None:
        """00 01 INPUT."""
        if not self.power.is_on:
            return NOT_APPLICABLE
        if kind == GET:
            return self.state.input
        if data not in self.state.inputs:
            return RANGE_OVER
        self.state.input = data
        return None

    def picture_muting_item(self, kind: int, data: int) -> int | Nak | None:
        """00 30 PICTURE MUTING."""
        if not self.power.is_on:
            return NOT_APPLICABLE
        if kind == GET:
            return int(self.state.picture_muting)
        if data > 1:
            return RANGE_OVER
        self.state.picture_muting = data == 1
        return None

    def volume_item(self, kind: int, data: int) -> int | Nak | None:
        """00 16 VOLUME, 0-100."""
        if not self.power.is_on:
            return NOT_APPLICABLE
        if kind == GET:
            return self.state.volume
        if data > 100:
            return RANGE_OVER
        self.state.volume = data
        return None


ItemHandler = Callable[[SonySimulator, int, int], "int | Nak | None"]

ITEMS: dict[int, ItemHandler] = {
    INPUT: SonySimulator.input_item,
    VOLUME: SonySimulator.volume_item,
    PICTURE_MUTING: SonySimulator.picture_muting_item,
    STATUS_ERROR: SonySimulator.status_error_item,
    STATUS_POWER: SonySimulator.status_power_item,
    POWER: SonySimulator.power_item,
    LAMP_TIMER: SonySimulator.lamp_timer_item,
    ROM_VERSION: SonySimulator.rom_version_item,
}


class SonySession(Session):
    """Frames 8-byte blocks from A9 to 9A; resynchronises on anything else."""

    sim: SonySimulator

    def __init__(self, sim: SonySimulator, link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        """Collect blocks; a bad check sum is NAKed F0 10, a bad end code is skipped."""
        self._buffer += data
        while self._buffer and not self._closed:
            start = self._buffer.find(bytes([START]))
            if start < 0:
                self._buffer = b""
                return
            self._buffer = self._buffer[start:]
            if len(self._buffer) < 8:
                return
            request = self._buffer[:8]
            if request[7] != END:
                log.debug("%s no end code, resync: %s", self.sim.id, request.hex(" "))
                self._buffer = self._buffer[1:]
                continue
            self._buffer = self._buffer[8:]
            self.dispatch(request)

    def answer(self, request: bytes) -> bytes | None:
        """ACK, NAK or data reply."""
        if checksum(request) != request[6]:
            return nak(CHECKSUM_ERROR)
        return self.sim.execute(request)

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: NAK not applicable."""
        return nak(NOT_APPLICABLE)
