"""Detect: which profile does the device on a port answer to, and at which line speed?

Every candidate profile's `identify:` queries are tried with short timeouts and no retries:
first each profile at its own line settings; on a serial port where nothing answered, then a
baud-rate scan over the usual rates (each profile's parity and data bits kept), stopping after
the first rate at which something answers. A device at the wrong baud hears noise and stays
silent, so a silent try costs one timeout.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tribune.drivers.probe import ProbeReport, probe
from tribune.drivers.runtime import line_settings
from tribune.drivers.transport import LineSettings
from tribune.errors import AuthenticationError, LinkError, ProtocolError
from tribune.profiles.schema import Profile

USUAL_BAUDS = (9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One profile at one line setting on the port."""

    profile: Profile
    url: str
    line: dict[str, Any] | None  # overrides of the profile's serial settings; None: as is
    described: str  # "19200 8N1", or the TCP URL


@dataclass(frozen=True, slots=True)
class Candidate:
    """A profile the device answered, how well, and at which settings."""

    profile_id: str
    url: str
    line: str | None  # "19200 8N1" on serial ports
    baud: int | None
    score: int
    matches: bool
    identity: dict[str, str]
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "profile": self.profile_id,
            "port": self.url,
            "line": self.line,
            "baud": self.baud,
            "score": self.score,
            "matches": self.matches,
            **self.identity,
            "note": self.note,
        }


Progress = Callable[[int, int, Attempt], None]  # (tries done, tries planned, the next try)


class NothingAnsweredError(LinkError):
    """No profile got an answer on the port."""


def port_kind(url: str) -> str:
    """`tcp` (a device's own network port), `serial-server` (socket://), `usb` or `serial`."""
    scheme = urlsplit(url).scheme
    if scheme == "tcp":
        return "tcp"
    if scheme == "socket":
        return "serial-server"
    if scheme == "usb":
        return "usb"
    return "serial"


def plan(
    url: str, profiles: Sequence[Profile], *, bauds: Sequence[int] = USUAL_BAUDS
) -> tuple[list[Attempt], list[list[Attempt]]]:
    """The tries at each profile's own settings, then the baud scan's tries, rate by rate."""
    kind = port_kind(url)
    # USB profiles speak only on usb:// ports (the relay boards), and only they do.
    profiles = [p for p in profiles if (p.codec == "usb") == (kind == "usb")]
    if kind == "usb":
        return [Attempt(p, url, None, url) for p in profiles], []
    if kind == "tcp":
        first = [
            Attempt(p, _with_port(url, p), None, _with_port(url, p))
            for p in profiles
            if p.link.tcp_port is not None
        ]
        return first, []
    own = [Attempt(p, url, None, _settings(p, None).describe()) for p in profiles]
    if kind == "serial-server":  # the server's own settings apply; nothing to scan
        return own, []
    scan = []
    for baud in bauds:
        tries = []
        for p in profiles:
            if _settings(p, None).baudrate == baud:
                continue  # already tried in the first pass
            line = {"baudrate": baud}
            tries.append(Attempt(p, url, line, _settings(p, line).describe()))
        scan.append(tries)
    return own, scan


async def detect(
    url: str,
    profiles: Sequence[Profile],
    *,
    timeout: float = 0.5,
    bauds: Sequence[int] = USUAL_BAUDS,
    scan: bool = True,
    password: str | None = None,
    progress: Progress | None = None,
) -> list[Candidate]:
    """The profiles the device on `url` answers, best first.

    Raises `LinkError` when a serial port does not exist and `NothingAnsweredError` when no
    profile got an answer.
    """
    local = port_kind(url) == "serial" and "://" not in url
    if local and not await asyncio.to_thread(os.path.exists, url):
        raise LinkError(f"{url}: no such port (is the adapter plugged in? try `tribune usb scan`)")
    first, rates = plan(url, profiles, bauds=bauds)
    if not scan:
        rates = []
    total = len(first) + sum(len(r) for r in rates)
    done = 0
    found: list[Candidate] = []
    last_error: str | None = None
    for batch in [first, *rates]:
        for attempt in batch:
            if progress is not None:
                progress(done, total, attempt)
            candidate, error = await _try(attempt, timeout, password)
            done += 1
            if candidate is not None:
                found.append(candidate)
            last_error = error or last_error
        if found:
            break
    if progress is not None:
        progress(total, total, first[-1] if first else Attempt(profiles[0], url, None, url))
    if not found:
        tried = f"{done} tries of {len({a.profile.id for a in first})} profiles"
        why = f"; last error: {last_error}" if last_error else ""
        raise NothingAnsweredError(f"{url}: no profile got an answer ({tried}){why}")
    return sorted(found, key=lambda c: (not c.matches, -c.score))


async def _try(
    attempt: Attempt, timeout: float, password: str | None
) -> tuple[Candidate | None, str | None]:
    profile = attempt.profile
    baud = None if port_kind(attempt.url) == "tcp" else _settings(profile, attempt.line).baudrate
    line: str | None = None if port_kind(attempt.url) == "tcp" else attempt.described
    try:
        report: ProbeReport = await probe(
            profile,
            attempt.url,
            password=password,
            line=attempt.line,
            timeout=timeout,
            retries=0,
            handshake_timeout=2 * timeout,
            read_capabilities=False,
        )
    except AuthenticationError as exc:
        # A device that asks for a password speaks the protocol: worth listing.
        wants = f"the device wants a password ({exc}): probe with --password"
        return Candidate(profile.id, attempt.url, line, baud, 1, False, {}, wants), None
    except (LinkError, ProtocolError) as exc:
        return None, str(exc)
    if not report.answered:
        return None, None
    note = None if report.matches else "; ".join(report.problems())
    return (
        Candidate(
            profile.id,
            attempt.url,
            line,
            baud,
            report.score,
            report.matches,
            report.identity(),
            note,
        ),
        None,
    )


def _settings(profile: Profile, line: dict[str, Any] | None) -> LineSettings:
    return line_settings(profile, line)


def _with_port(url: str, profile: Profile) -> str:
    """`tcp://host` gets the profile's TCP port; an explicit port is kept."""
    parts = urlsplit(url)
    if parts.port is not None or profile.link.tcp_port is None:
        return url
    return f"tcp://{parts.hostname}:{profile.link.tcp_port}"
