"""NEC projector, binary control protocol, on RS-232 (38400 8N1) or TCP 7142.

Follows NEC Display Solutions' "Projector Control Command Reference Manual" (2014-2020
edition, e.g. for the PX602WL / UM361X) and the older "Control Commands for NEC Projector":

- a frame is <type> <command> <ID1> <ID2> <length> <data...> <checksum>; the checksum is the
  low byte of the sum of all preceding bytes; a frame with a bad checksum is ignored;
- a success reply has type 0x20|type, an error reply 0xA0|type with two data bytes
  <ERR1> <ERR2>: 00 00 unknown command, 00 01 not supported by this model, 01 00 invalid
  value, 01 01 terminal unavailable, 02 03 setting not possible, 02 0D power off inhibited
  (during the no-power-off period of warm-up), 02 0E execution error (used for busy);
- replies carry ID1 (projector id) and ID2 (model code);
- 078-3 INPUT STATUS and 078-4 MUTE STATUS answer 16 data bytes (the 2014-2020 manual);
  037-7 LAMP INFORMATION REQUEST 4 (`03 9B`, target, unit 00 seconds / 02 hours, item) is
  from the older "Control Commands for NEC Projector" lists, beside 037-4 (`03 96`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.sim.base import LineSettings, Link, Power, Session, Simulator, log, sum8

ID1 = 0x01
ID2 = 0x20

UNKNOWN = (0x00, 0x00)
INVALID_VALUE = (0x01, 0x00)
BAD_TERMINAL = (0x01, 0x01)
NOT_POSSIBLE = (0x02, 0x03)
POWER_OFF_INHIBITED = (0x02, 0x0D)
EXECUTION_ERROR = (0x02, 0x0E)

INPUTS = {0x01: "COMPUTER 1", 0x02: "COMPUTER 2", 0x06: "VIDEO", 0x1A: "HDMI 1", 0x1B: "HDMI 2"}
# 078-3: the terminal as "selection signal type 1" (its number) and "type 2" (its kind:
# 01 COMPUTER, 02 VIDEO, 21 HDMI).
SIGNAL_TYPES = {
    0x01: (0x01, 0x01),
    0x02: (0x02, 0x01),
    0x06: (0x01, 0x02),
    0x1A: (0x01, 0x21),
    0x1B: (0x02, 0x21),
}


@dataclass
class NecState:
    """What an NEC projector reports."""

    input: int = 0x1A
    inputs: dict[int, str] = field(default_factory=lambda: dict(INPUTS))
    picture_mute: bool = False
    sound_mute: bool = False
    onscreen_mute: bool = False
    freeze: bool = False
    volume: int = 20
    lamp_seconds: int = 1234 * 3600
    lamp_remaining: int = 76
    model: str = "NP-P554U"
    serial_number: str = "1Z00123AB"
    errors: bytes = bytes(12)


Handler = Callable[["NecSimulator", bytes], "bytes | tuple[int, int]"]


def frame(kind: int, command: int, data: bytes = b"") -> bytes:
    """One reply frame with its checksum."""
    body = bytes([kind, command, ID1, ID2, len(data)]) + data
    return body + bytes([sum8(body)])


class NecSimulator(Simulator[NecState]):
    """An NEC projector."""

    id = "nec-projector"
    title = "NEC projector (binary control protocol)"
    document = "NEC Projector Control Command Reference Manual"
    tcp_port = 7142
    serial = LineSettings(38400)
    warm_up = 30.0
    cool_down = 60.0

    def initial_state(self) -> NecState:
        """Standby, HDMI 1 selected."""
        return NecState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """Same frames on TCP and serial."""
        return NecSession(self, link)

    def execute(self, request: bytes) -> bytes:
        """The reply frame to one well-formed request frame."""
        kind, command, data = request[0], request[1], request[5:-1]
        ok = 0x20 | kind
        handler = COMMANDS.get((kind, command))
        if handler is None:
            return self.error(kind, command, UNKNOWN)
        result = handler(self, data)
        if isinstance(result, tuple):
            return self.error(kind, command, result)
        return frame(ok, command, result)

    def error(self, kind: int, command: int, code: tuple[int, int]) -> bytes:
        """An error reply."""
        return frame(0xA0 | kind, command, bytes(code))

    def power_on(self, data: bytes) -> bytes | tuple[int, int]:
        """015. POWER ON."""
        state = self.power.state
        if state is Power.COOLING:
            return NOT_POSSIBLE
        if state is Power.OFF:
            self.power.turn_on()
        return b""

    def power_off(self, data: bytes) -> bytes | tuple[int, int]:
        """016. POWER OFF."""
        state = self.power.state
        if state is Power.WARMING:
            return POWER_OFF_INHIBITED
        if state is Power.ON:
            self.power.turn_off()
        return b""

    def input_switch(self, data: bytes) -> bytes | tuple[int, int]:
        """018. INPUT SW CHANGE: data 01 <terminal>; replies 00 on success."""
        if len(data) != 2 or data[0] != 0x01:
            return INVALID_VALUE
        if not self.power.is_on:
            return NOT_POSSIBLE
        if data[1] not in self.state.inputs:
            return BAD_TERMINAL
        self.state.input = data[1]
        return b"\x00"

    def mute(self, attribute: str, on: bool) -> bytes | tuple[int, int]:
        """020-025. PICTURE / SOUND / ONSCREEN MUTE ON and OFF."""
        if not self.power.is_on:
            return NOT_POSSIBLE
        setattr(self.state, attribute, on)
        return b""

    def freeze(self, data: bytes) -> bytes | tuple[int, int]:
        """098-8. FREEZE CONTROL: 01 on, 02 off."""
        if data not in (b"\x01", b"\x02"):
            return INVALID_VALUE
        if not self.power.is_on:
            return NOT_POSSIBLE
        self.state.freeze = data == b"\x01"
        return b"\x00"

    def volume(self, data: bytes) -> bytes | tuple[int, int]:
        """030-12. VOLUME ADJUST: 05 00 <00 absolute|01 relative> <lo> <hi>."""
        if len(data) != 5 or data[:2] != b"\x05\x00" or data[2] > 1:
            return INVALID_VALUE
        if not self.power.is_on:
            return NOT_POSSIBLE
        value = int.from_bytes(data[3:5], "little", signed=True)
        target = value if data[2] == 0 else self.state.volume + value
        if not 0 <= target <= 63:
            return INVALID_VALUE
        self.state.volume = target
        return b"\x00\x00"

    def running_sense(self, data: bytes) -> bytes | tuple[int, int]:
        """006. RUNNING SENSE: one status byte."""
        state = self.power.state
        bits = 0
        if state in (Power.WARMING, Power.COOLING):
            bits |= 0x80  # power on/off processing
        if state is Power.COOLING:
            bits |= 0x20
        if state is Power.WARMING:
            bits |= 0x08  # no power-off period
        if state in (Power.ON, Power.WARMING):
            bits |= 0x02
        return bytes([bits])

    def status(self, data: bytes) -> bytes | tuple[int, int]:
        """078-1 to 078-5: SETTING, RUNNING, INPUT, MUTE STATUS and MODEL NAME (data 00-04)."""
        state = self.power.state
        if data == b"\x02":
            status = bytearray(16)  # DATA01 no switch in progress, DATA02 signal list entry 1
            status[2], status[3] = SIGNAL_TYPES.get(self.state.input, (0xFF, 0xFF))
            return bytes(status)
        if data == b"\x03":
            mutes = (self.state.picture_mute, self.state.sound_mute, self.state.onscreen_mute)
            return bytes(mutes).ljust(16, b"\x00")
        if data == b"\x01":
            operation = {Power.OFF: 0x10, Power.WARMING: 0x04, Power.ON: 0x04, Power.COOLING: 0x05}
            status = bytearray(16)
            status[2] = int(state in (Power.ON, Power.WARMING))
            status[3] = int(state is Power.COOLING)
            status[4] = int(state in (Power.WARMING, Power.COOLING))
            status[5] = operation[state]
            return bytes(status)
        if data == b"\x04":
            return self.state.model.encode().ljust(32, b"\x00")[:32]
        if data == b"\x00":
            return bytes(32)
        return INVALID_VALUE

    def error_status(self, data: bytes) -> bytes | tuple[int, int]:
        """009. ERROR STATUS REQUEST: 12 bytes of error bits."""
        return self.state.errors

    def lamp(self, data: bytes) -> bytes | tuple[int, int]:
        """037-4. LAMP INFORMATION REQUEST 3: 00 01 usage seconds, 00 04 remaining %."""
        if data == b"\x00\x01":
            return data + self.state.lamp_seconds.to_bytes(4, "little")
        if data == b"\x00\x04":
            return data + self.state.lamp_remaining.to_bytes(4, "little", signed=True)
        return INVALID_VALUE

    def lamp_hours(self, data: bytes) -> bytes | tuple[int, int]:
        """037-7. LAMP INFORMATION REQUEST 4: lamp 1, unit 00 seconds / 02 hours, item 01 / 04."""
        if len(data) != 3 or data[0] != 0x00 or data[1] not in (0x00, 0x02):
            return INVALID_VALUE
        if data[2] == 0x01:
            seconds = self.state.lamp_seconds
            value = seconds // 3600 if data[1] == 0x02 else seconds
            return data + value.to_bytes(4, "little")
        if data[2] == 0x04:
            return data + self.state.lamp_remaining.to_bytes(4, "little", signed=True)
        return INVALID_VALUE

    def information(self, data: bytes) -> bytes | tuple[int, int]:
        """305-2 SERIAL NUMBER (01 06) and 305-3 BASIC INFORMATION (02) requests."""
        if data == b"\x01\x06":
            return data + self.state.serial_number.encode().ljust(16, b"\x00")[:16]
        if data == b"\x02":
            operation = {Power.OFF: 0x10, Power.WARMING: 0x04, Power.ON: 0x04, Power.COOLING: 0x05}
            info = bytearray(16)
            info[0] = 0x02
            info[1] = operation[self.power.state]
            info[3] = self.state.input
            info[6] = int(self.state.picture_mute)
            info[7] = int(self.state.sound_mute)
            info[8] = int(self.state.onscreen_mute)
            info[9] = int(self.state.freeze)
            return bytes(info)
        return INVALID_VALUE


def _mute(attribute: str, on: bool) -> Handler:
    def handler(sim: NecSimulator, data: bytes) -> bytes | tuple[int, int]:
        return sim.mute(attribute, on)

    return handler


COMMANDS: dict[tuple[int, int], Handler] = {
    (0x00, 0x81): NecSimulator.running_sense,
    (0x00, 0x85): NecSimulator.status,
    (0x00, 0x88): NecSimulator.error_status,
    (0x00, 0xBF): NecSimulator.information,
    (0x01, 0x98): NecSimulator.freeze,
    (0x02, 0x00): NecSimulator.power_on,
    (0x02, 0x01): NecSimulator.power_off,
    (0x02, 0x03): NecSimulator.input_switch,
    (0x02, 0x10): _mute("picture_mute", True),
    (0x02, 0x11): _mute("picture_mute", False),
    (0x02, 0x12): _mute("sound_mute", True),
    (0x02, 0x13): _mute("sound_mute", False),
    (0x02, 0x14): _mute("onscreen_mute", True),
    (0x02, 0x15): _mute("onscreen_mute", False),
    (0x03, 0x10): NecSimulator.volume,
    (0x03, 0x96): NecSimulator.lamp,
    (0x03, 0x9B): NecSimulator.lamp_hours,
}


class NecSession(Session):
    """Frames NEC requests by their length byte and answers each."""

    sim: NecSimulator

    def __init__(self, sim: NecSimulator, link: Link) -> None:
        super().__init__(sim, link)
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        """Collect frames; resynchronise on bytes that cannot start one."""
        self._buffer += data
        while self._buffer and not self._closed:
            if self._buffer[0] > 0x03:
                self._buffer = self._buffer[1:]
                continue
            if len(self._buffer) < 5:
                return
            size = 6 + self._buffer[4]
            if len(self._buffer) < size:
                return
            request, self._buffer = self._buffer[:size], self._buffer[size:]
            if sum8(request[:-1]) != request[-1]:
                log.debug("%s bad checksum, ignored: %s", self.sim.id, request.hex(" "))
                continue
            self.dispatch(request)

    def answer(self, request: bytes) -> bytes | None:
        """Success `2x ...` or error `Ax ... ERR1 ERR2`."""
        return self.sim.execute(request)

    def busy_answer(self, request: bytes) -> bytes | None:
        """Busy: the execution error."""
        return self.sim.error(request[0], request[1], EXECUTION_ERROR)
