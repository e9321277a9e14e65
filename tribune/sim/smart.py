"""SMART Board interactive display, RS-232 room-control protocol at 19200 8N1.

Follows "Managing the display using RS-232" in the SMART Board 6000S / 7000 series and
SMART Board MX series installation and maintenance guides (smarttech.com/kb/171414, 171164,
171555):

- ASCII commands after the `>` prompt, ended by CR; not case-sensitive, extra spaces
  ignored; each response is followed by a new prompt, a lone CR just gets the prompt;
- `get powerstate` -> `powerstate=on`; `set powerstate=ready` -> `powerstate=ready`;
  power states on, ready, standby, powersave (plus updateon/updateready while updating);
- with the exception of get/set powerstate, commands are available only in the ON state;
  in a low-power state (powersave) the display answers nothing at all;
- `get input`/`set input=hdmi1` (6000S (V3): hdmi1-3, vga1, ops1, usbc1, usbc2, android),
  volume (`=n`, `+n`, `-n`; setting the volume unmutes, volume 0 mutes), mute, videofreeze,
  screenshade, brightness; read only: `get fwversion`, `get modelnum`, `get serialnum`,
  `get partnum`;
- an unknown or malformed command gets `invalid cmd: <command without spaces>`;
- changes made on the front panel, the Settings app or the remote, and power state changes,
  are sent as asynchronous messages `#setting=value` with no prompt after them (MX guide).

The guides give no transition state: here `get powerstate` keeps reporting the old state until
the display has finished turning on (warm-up) or off, while `set` echoes the new value.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tribune.sim.base import LineSession, LineSettings, Link, Power, Session, Simulator

PROMPT = b">"
CRLF = b"\r\n"
ON_OFF = ("on", "off")


@dataclass
class SmartState:
    """What a SMART Board display reports."""

    off_state: str = "ready"
    input: str = "hdmi1"
    inputs: tuple[str, ...] = (
        "hdmi1",
        "hdmi2",
        "hdmi3",
        "vga1",
        "ops1",
        "usbc1",
        "usbc2",
        "android",
    )
    volume: int = 30
    mute: bool = False
    videofreeze: bool = False
    screenshade: bool = False
    brightness: int = 80
    fwversion: str = "3.3.12.0"
    modelnum: str = "SBID-6275S-V3"
    serialnum: str = "SB6275SV3A12345"
    partnum: str = "1031546-01"


class SmartSimulator(Simulator[SmartState]):
    """A SMART Board 6000S/7000-style interactive display."""

    id = "smart-board"
    title = "SMART Board interactive display (RS-232)"
    document = "SMART Board 6000S/7000/MX installation guides, managing the display using RS-232"
    tcp_port = None
    serial = LineSettings(19200)
    warm_up = 10.0
    cool_down = 5.0

    def initial_state(self) -> SmartState:
        """Ready (off but listening), HDMI 1."""
        return SmartState()

    def open_session(self, link: Link, *, network: bool) -> Session:
        """Same protocol on every link."""
        return SmartSession(self, link)

    @property
    def powerstate(self) -> str:
        """The reported power state (old state until a transition ends)."""
        state = self.power.state
        if state in (Power.ON, Power.COOLING):
            return "on"
        return self.state.off_state

    def front_panel(self, name: str, value: str) -> None:
        """Someone changed a setting on the display itself: apply and announce it."""
        if name == "powerstate":
            self._set_power(value)
        elif self._set(name, "=" + value) is None:
            raise ValueError(f"{name}={value} is not a valid setting")
        self.announce(name, self._get(name) if name != "powerstate" else value)

    def announce(self, name: str, value: str) -> None:
        """Send the asynchronous message `#name=value` to every client."""
        self.broadcast(f"#{name}={value}".encode() + CRLF)

    def execute(self, normalized: str) -> str | None:
        """The response to one command with spaces removed and lower-cased; None: silence."""
        if self.power.state is Power.OFF and self.state.off_state == "powersave":
            return None
        for verb in ("get", "set"):
            if normalized.startswith(verb):
                rest = normalized[len(verb) :]
                break
        else:
            return f"invalid cmd: {normalized}"
        name = next((key for key in SETTINGS if rest.startswith(key)), None)
        if name is None:
            return f"invalid cmd: {normalized}"
        argument = rest[len(name) :]
        if name != "powerstate" and not self.power.is_on:
            return f"invalid cmd: {normalized}"
        if verb == "get":
            return f"{name}={self._get(name)}" if argument == "" else f"invalid cmd: {normalized}"
        value = self._set(name, argument)
        return f"invalid cmd: {normalized}" if value is None else f"{name}={value}"

    def _get(self, name: str) -> str:
        state = self.state
        if name == "powerstate":
            return self.powerstate
        value = getattr(state, name)
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)

    def _set(self, name: str, argument: str) -> str | None:
        state = self.state
        operator, value = argument[:1], argument[1:]
        if name in ("volume", "brightness"):
            number = _level(getattr(state, name), operator, value)
            if number is None:
                return None
            setattr(state, name, number)
            if name == "volume":
                state.mute = number == 0  # setting the volume unmutes; zero mutes
            return str(number)
        if operator != "=":
            return None
        if name == "powerstate":
            return self._set_power(value)
        if name == "input":
            if value not in state.inputs:
                return None
            state.input = value
            return value
        if name in ("mute", "videofreeze", "screenshade") and value in ON_OFF:
            setattr(state, name, value == "on")
            return value
        return None

    def _set_power(self, value: str) -> str | None:
        power = self.power.state
        if value == "on":
            if power is Power.OFF:
                self.power.turn_on()
                self._announce_power_after(self.power.remaining)
            return value
        if value in ("ready", "standby", "powersave"):
            self.state.off_state = value
            if power in (Power.ON, Power.WARMING):
                self.power.turn_off()
                self._announce_power_after(self.power.remaining)
            return value
        return None

    def _announce_power_after(self, seconds: float) -> None:
        """Announce the power state once the transition now running has ended."""
        loop = asyncio.get_running_loop()
        loop.call_later(seconds + 0.001, lambda: self.announce("powerstate", self.powerstate))


SETTINGS = (
    "powerstate",
    "input",
    "volume",
    "mute",
    "videofreeze",
    "screenshade",
    "brightness",
    "fwversion",
    "modelnum",
    "serialnum",
    "partnum",
)
READ_ONLY = ("fwversion", "modelnum", "serialnum", "partnum")


def _level(current: int, operator: str, value: str) -> int | None:
    """`=n`, `+n` or `-n` applied to `current` within 0-100, None when invalid."""
    if not value.isdigit():
        return None
    amount = int(value)
    target = {"=": amount, "+": current + amount, "-": current - amount}.get(operator)
    if target is None or not 0 <= target <= 100:
        return None
    return target


class SmartSession(LineSession):
    """CR-terminated commands, each answered with a response line and the `>` prompt."""

    sim: SmartSimulator

    def answer(self, request: bytes) -> bytes | None:
        """`get volume` -> `volume=55\\r\\n>`."""
        normalized = request.decode("latin-1").replace(" ", "").lower()
        if normalized == "":
            return None if self._asleep() else PROMPT
        response = self.sim.execute(normalized)
        if response is None:
            return None
        if normalized.startswith("set") and any(name in normalized for name in READ_ONLY):
            response = f"invalid cmd: {normalized}"
        return response.encode() + CRLF + PROMPT

    def _asleep(self) -> bool:
        return self.sim.power.state is Power.OFF and self.sim.state.off_state == "powersave"
