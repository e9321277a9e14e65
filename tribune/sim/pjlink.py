"""PJLink projector, class 1 or class 2, on TCP port 4352.

Follows JBMIA "PJLink Specifications" Class 1 (v1.04) and Class 2 (v2.00), as quoted in
projector manuals (Panasonic PT-RZ570 and Maxell MP-JU4001 PJLink command tables):

- greeting `PJLINK 0\\r`, or with a password `PJLINK 1 <8 hex random>\\r`; the first command
  of the connection is then prefixed with MD5(random + password) as 32 hex digits; a wrong or
  missing digest is answered `PJLINK ERRA\\r` and the connection is closed;
- requests `%<class><CMD4> <param>\\r`, replies `%<class><CMD4>=<answer>\\r`, errors
  ERR1 (undefined command, also a class-2 command sent as class 1), ERR2 (out of parameter),
  ERR3 (unavailable time: warm-up, cool-down, standby), ERR4 (projector failure);
- POWR? answers 0 standby, 1 on, 2 cooling, 3 warming up;
- the projector closes a connection left idle for 30 s;
- class 2 sends `%2LKUP=<mac>` and status notifications by UDP (here: to `notify=(host, port)`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.sim.base import LineSession, LineSettings, Link, Power, Session, Simulator, log

POWER_CODES = {Power.OFF: "0", Power.ON: "1", Power.COOLING: "2", Power.WARMING: "3"}
AV_MUTES = ("10", "11", "20", "21", "30", "31")
IDLE_TIMEOUT = 30.0


@dataclass
class PjlinkState:
    """What a PJLink projector reports."""

    input: str = "31"
    inputs: dict[str, str] = field(
        default_factory=lambda: {
            "11": "COMPUTER 1",
            "12": "COMPUTER 2",
            "31": "HDMI 1",
            "32": "HDMI 2",
            "51": "NETWORK",
        }
    )
    video_mute: bool = False
    audio_mute: bool = False
    freeze: bool = False
    speaker_volume: int = 10
    microphone_volume: int = 5
    lamp_hours: int = 1234
    filter_hours: int = 321
    errors: str = "000000"
    failed: bool = False
    name: str = "ROOM-101"
    manufacturer: str = "TRIBUNE"
    model: str = "SIM-PJ"
    other_info: str = "tribune simulator"
    serial_number: str = "TRB0000001"
    software_version: str = "1.04"
    mac: str = "00:1a:2b:3c:4d:5e"
    input_resolution: str = "1920x1080"
    recommended_resolution: str = "1920x1200"
    lamp_model: str = "ELPLP96"
    filter_model: str = "ELPAF60"


Handler = Callable[["PjlinkSimulator", str], str]


class PjlinkSimulator(Simulator[PjlinkState]):
    """A PJLink class 1 or class 2 projector."""

    id = "pjlink"
    title = "PJLink projector (class 1/2)"
    document = "JBMIA PJLink Specifications, Class 1 v1.04 and Class 2 v2.00"
    tcp_port = 4352
    serial = LineSettings(9600)
    warm_up = 30.0
    cool_down = 60.0
    accepts_password = True

    def __init__(
        self,
        *,
        speed: float = 1.0,
        password: str | None = None,
        class_: int = 1,
        notify: tuple[str, int] | None = None,
    ) -> None:
        if class_ not in (1, 2):
            raise ValueError("PJLink class must be 1 or 2")
        self.pjlink_class = class_
        self.notify_to = notify
        self._udp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        super().__init__(speed=speed, password=password)

    def initial_state(self) -> PjlinkState:
        """Standby, HDMI 1 selected."""
        return PjlinkState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """A PJLink connection (greeting, auth; idle timeout on TCP)."""
        return PjlinkSession(self, link, idle_timeout=network)

    async def start(self) -> None:
        """Class 2 announces itself with `%2LKUP` when it comes up."""
        if self.notify_to is None:
            return
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=self.notify_to
        )
        if self.pjlink_class == 2:
            self.notify(f"%2LKUP={self.state.mac.upper()}")

    async def stop(self) -> None:
        """Close the notification socket."""
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    def notify(self, message: str) -> None:
        """Send a class-2 status notification by UDP, if a listener was given."""
        if self._udp is None or self.pjlink_class != 2:
            return
        log.debug("%s notify %r", self.id, message)
        self._udp.sendto(message.encode() + b"\r")

    def execute(self, cls: int, command: str, param: str) -> str:
        """The answer (after `=`) to one request."""
        table = CLASS1 if cls == 1 else CLASS2
        if cls > self.pjlink_class or command not in table:
            return "ERR1"
        return table[command](self, param)

    # Power.

    def powr(self, param: str) -> str:
        """POWR: 1 on, 0 off, ? status."""
        state = self.power.state
        if param == "?":
            return POWER_CODES[state]
        if param not in ("0", "1"):
            return "ERR2"
        if self.state.failed:
            return "ERR4"
        if param == "1":
            if state is Power.COOLING:
                return "ERR3"
            if state is Power.OFF:
                self.power.turn_on()
                self._notify_power()
            return "OK"
        if state is Power.WARMING:
            return "ERR3"
        if state is Power.ON:
            self.power.turn_off()
            self._notify_power()
        return "OK"

    def _notify_power(self) -> None:
        self.notify(f"%2POWR={POWER_CODES[self.power.state]}")
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            self.power.remaining,
            lambda: self.notify(f"%2POWR={POWER_CODES[self.power.state]}"),
        )

    # Input, mute, freeze.

    def inpt(self, param: str) -> str:
        """INPT: select or query the input."""
        if not self.power.is_on:
            return "ERR3"
        if param == "?":
            return self.state.input
        if param not in self.state.inputs:
            return "ERR2"
        self.state.input = param
        self.notify(f"%2INPT={param}")
        return "OK"

    def avmt(self, param: str) -> str:
        """AVMT: 1x video, 2x audio, 3x both; x=1 mute, x=0 unmute."""
        if param != "?" and param not in AV_MUTES:
            return "ERR2"
        if not self.power.is_on:
            return "ERR3"
        state = self.state
        if param == "?":
            if state.video_mute and state.audio_mute:
                return "31"
            if state.video_mute:
                return "11"
            return "21" if state.audio_mute else "30"
        on = param[1] == "1"
        if param[0] in "13":
            state.video_mute = on
        if param[0] in "23":
            state.audio_mute = on
        self.notify(f"%2AVMT={self.avmt('?')}")
        return "OK"

    def frez(self, param: str) -> str:
        """FREZ: freeze the picture (class 2)."""
        if param not in ("0", "1", "?"):
            return "ERR2"
        if not self.power.is_on:
            return "ERR3"
        if param == "?":
            return "1" if self.state.freeze else "0"
        self.state.freeze = param == "1"
        return "OK"

    # Queries.

    def lamp(self, param: str) -> str:
        """LAMP: hours and on/off."""
        lit = self.power.state in (Power.ON, Power.WARMING)
        return f"{self.state.lamp_hours} {int(lit)}"

    def innm(self, param: str) -> str:
        """INNM: the name of an input, asked as `?<input>`."""
        name = self.state.inputs.get(param[1:]) if param.startswith("?") else None
        return "ERR2" if name is None else name

    def ires(self, param: str) -> str:
        """IRES: the input signal resolution."""
        return self.state.input_resolution if self.power.is_on else "ERR3"


def _query(read: Callable[[PjlinkSimulator], str]) -> Handler:
    """A read-only command: `?` only."""

    def handler(sim: PjlinkSimulator, param: str) -> str:
        return read(sim) if param == "?" else "ERR2"

    return handler


def _volume_step(attribute: str) -> Handler:
    """SVOL/MVOL: 1 one step up, 0 one step down; write-only."""

    def step(sim: PjlinkSimulator, param: str) -> str:
        if param not in ("0", "1"):
            return "ERR2"
        if not sim.power.is_on:
            return "ERR3"
        value = getattr(sim.state, attribute) + (1 if param == "1" else -1)
        setattr(sim.state, attribute, max(0, min(30, value)))
        return "OK"

    return step


def _query_param(handler: Handler) -> Handler:
    """A read-only command whose parameter starts with `?`."""

    def checked(sim: PjlinkSimulator, param: str) -> str:
        return handler(sim, param) if param.startswith("?") else "ERR2"

    return checked


CLASS1: dict[str, Handler] = {
    "POWR": PjlinkSimulator.powr,
    "INPT": PjlinkSimulator.inpt,
    "AVMT": PjlinkSimulator.avmt,
    "ERST": _query(lambda sim: sim.state.errors),
    "LAMP": _query_param(PjlinkSimulator.lamp),
    "INST": _query(lambda sim: " ".join(sim.state.inputs)),
    "NAME": _query(lambda sim: sim.state.name),
    "INF1": _query(lambda sim: sim.state.manufacturer),
    "INF2": _query(lambda sim: sim.state.model),
    "INFO": _query(lambda sim: sim.state.other_info),
    "CLSS": _query(lambda sim: str(sim.pjlink_class)),
}

CLASS2: dict[str, Handler] = {
    **CLASS1,
    "SNUM": _query(lambda sim: sim.state.serial_number),
    "SVER": _query(lambda sim: sim.state.software_version),
    "INNM": _query_param(PjlinkSimulator.innm),
    "IRES": _query_param(PjlinkSimulator.ires),
    "RRES": _query(lambda sim: sim.state.recommended_resolution),
    "FILT": _query(lambda sim: str(sim.state.filter_hours)),
    "RLMP": _query(lambda sim: sim.state.lamp_model),
    "RFIL": _query(lambda sim: sim.state.filter_model),
    "SVOL": _volume_step("speaker_volume"),
    "MVOL": _volume_step("microphone_volume"),
    "FREZ": PjlinkSimulator.frez,
}


class PjlinkSession(LineSession):
    """One PJLink TCP connection: greeting, MD5 auth on the first command, idle timeout."""

    sim: PjlinkSimulator

    def __init__(self, sim: PjlinkSimulator, link: Link, *, idle_timeout: bool = True) -> None:
        super().__init__(sim, link)
        self.idle_timeout = idle_timeout
        self.random = secrets.token_hex(4)
        self.authenticated = sim.password is None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self) -> None:
        """Greet: `PJLINK 0` or `PJLINK 1 <random>`."""
        greeting = "PJLINK 0" if self.sim.password is None else f"PJLINK 1 {self.random}"
        self.send(greeting.encode() + b"\r")
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        """Any byte restarts the idle timer."""
        self._arm_idle()
        super().data_received(data)

    def connection_lost(self) -> None:
        """Stop the idle timer."""
        if self._idle is not None:
            self._idle.cancel()
        super().connection_lost()

    def dispatch(self, request: bytes) -> None:
        """Check the digest on the first command, then answer as usual."""
        if not self.authenticated:
            secret = (self.random + (self.sim.password or "")).encode()
            expected = hashlib.md5(secret, usedforsecurity=False).hexdigest()
            digest, request = request[:32], request[32:]
            if digest.decode("ascii", "replace").lower() != expected:
                log.debug("%s bad digest %r: ERRA", self.sim.id, digest)
                self.send(b"PJLINK ERRA\r")
                self.close_after_send()
                return
            self.authenticated = True
        elif len(request) > 32 and request[32:33] == b"%" and request[:1] != b"%":
            # A client that always hashes: a digest without a password set is ignored.
            request = request[32:]
        super().dispatch(request)

    def answer(self, request: bytes) -> bytes | None:
        """`%1POWR ?` -> `%1POWR=1`."""
        parsed = _parse(request)
        if parsed is None:
            return None
        cls, command, param = parsed
        if cls is None:
            return f"%{request[1:2].decode('ascii', 'replace')}{command}=ERR1\r".encode()
        return f"%{cls}{command}={self.sim.execute(cls, command, param)}\r".encode()

    def busy_answer(self, request: bytes) -> bytes | None:
        """ERR3: unavailable time."""
        parsed = _parse(request)
        if parsed is None:
            return None
        cls, command, _ = parsed
        return f"%{cls or 1}{command}=ERR3\r".encode()

    def _arm_idle(self) -> None:
        if not self.idle_timeout:
            return
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self.sim.scaled(IDLE_TIMEOUT), self._idle_timeout)

    def _idle_timeout(self) -> None:
        log.debug("%s idle for %.0f s: closing", self.sim.id, IDLE_TIMEOUT)
        self.hang_up()


def _parse(request: bytes) -> tuple[int | None, str, str] | None:
    """(class, command, parameter) of `%1POWR 1`; class None when not 1 or 2."""
    text = request.decode("ascii", "replace")
    if len(text) < 7 or text[0] != "%":
        return None
    command, param = text[2:6].upper(), text[7:]
    cls: int | None = int(text[1]) if text[1] in "12" else None
    if text[6] != " ":
        param = "\x00"  # no separator: answered as an out-of-range parameter
    return cls, command, param
