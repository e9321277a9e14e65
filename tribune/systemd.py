"""systemd integration: sd_notify written by hand, and the watchdog that says a service is alive.

The protocol (sd_notify(3)): one datagram of newline-separated `KEY=value` lines to the AF_UNIX
socket named by `$NOTIFY_SOCKET`; a name starting with `@` is in the abstract namespace (a
leading NUL byte). Without `$NOTIFY_SOCKET` (a shell, the tests, the demo) nothing is sent. A
failed send is logged once and never raised: the room runs whether systemd listens or not.

`ServiceWatch` runs inside the service's event loop: it sends `READY=1` once the service is up,
`STATUS=` whenever the line a technician reads in `systemctl status` changes, and `WATCHDOG=1`
every `WatchdogSec/3`, but only while the service is healthy. A frozen loop sends nothing by
itself; a loop that runs while a device runtime is dead or wedged withholds the pings, so systemd
kills and restarts the service (the room's desired state is restored from the store).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

STATUS_TICK = 1.0  # how often the status line is recomputed
READY_WAIT = 10.0  # READY=1 waits at most this long for every device's first connect attempt
STALL_FLOOR = 60.0  # a device runtime step is never called wedged before this many seconds
LOOP_LAG_WARNING = 1.0  # the loop was blocked this long: say so in the journal


def notify_address(value: str) -> str | None:
    """The socket address `$NOTIFY_SOCKET` names: a path, or an abstract name with its NUL."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # unset, or a kind this code does not speak (vsock:)


class Notifier:
    """Sends sd_notify datagrams to `$NOTIFY_SOCKET`; does nothing when it is not set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = notify_address(raw)
        if raw and self.address is None:
            log.warning("systemd: NOTIFY_SOCKET=%s: not a socket path, not notifying", raw)
        self._sock: socket.socket | None = None
        self._failing = False
        self._stopping = False

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (a `Type=notify` unit)."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send `lines` as one datagram; False when not sent (never raises)."""
        if self.address is None:
            return False
        data = "\n".join(lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(data, self.address)
        except OSError as exc:  # gone, refused, full (non-blocking): systemd will notice
            if not self._failing:
                log.warning("systemd: cannot notify %s: %s", self.address.lstrip("\0"), exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("systemd: notifying again")
            self._failing = False
        return True

    def ready(self, status: str) -> bool:
        """Startup is finished."""
        return self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        """The one line `systemctl status` shows."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """Still alive."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun (sent once)."""
        if self._stopping:
            return False
        self._stopping = True
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float:
    """`WatchdogSec` in seconds from `$WATCHDOG_USEC` (0 when off or meant for another PID)."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0.0
    owner = env.get("WATCHDOG_PID")
    if owner is not None and owner.strip() != str(os.getpid() if pid is None else pid):
        return 0.0
    return usec / 1_000_000 if usec > 0 else 0.0


@dataclass
class Health:
    """What the watch asks of the service on each tick."""

    ready: Callable[[], bool]  # startup finished (READY=1 is sent when true, or after READY_WAIT)
    problem: Callable[[], str | None]  # None when healthy, else why (no WATCHDOG=1 meanwhile)
    status: Callable[[], str]  # the technician's line while healthy


class ServiceWatch:
    """READY=1, STATUS= on change and WATCHDOG=1 while healthy, from inside the event loop."""

    def __init__(
        self,
        notifier: Notifier,
        health: Health,
        *,
        watchdog: float | None = None,
        tick: float = STATUS_TICK,
        ready_wait: float = READY_WAIT,
    ) -> None:
        """`watchdog`: WatchdogSec in seconds (default from the environment; 0: no pings)."""
        self.notifier = notifier
        self.health = health
        self.watchdog = watchdog_interval() if watchdog is None else watchdog
        self.tick = tick
        self.ready_wait = ready_wait
        self.is_ready = False
        self.pings = 0
        self._status: str | None = None
        self._problem: str | None = None

    @property
    def ping_every(self) -> float:
        """Seconds between pings: a third of WatchdogSec (0 when there is no watchdog)."""
        return self.watchdog / 3

    async def run(self) -> None:
        """Until cancelled."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_ping = started
        while True:
            now = loop.time()
            problem = self._check()
            waited = now - started > self.ready_wait
            if not self.is_ready and (waited or self._probe(self.health.ready)):
                self.is_ready = True
                self._status = self._line(problem)
                self.notifier.ready(self._status)
            elif self.is_ready:
                self._show(self._line(problem))
            if self.watchdog > 0 and now >= next_ping:
                if problem is None:
                    self.notifier.watchdog()
                    self.pings += 1
                next_ping = now + self.ping_every
            wait = self.tick if self.watchdog <= 0 else min(self.tick, next_ping - now)
            wait = max(wait, 0.01)
            await asyncio.sleep(wait)
            lag = loop.time() - now - wait
            if lag > LOOP_LAG_WARNING:
                log.warning("systemd: the event loop was blocked for %.1f s", lag)

    def _check(self) -> str | None:
        try:
            problem = self.health.problem()
        except Exception as exc:  # unknown health is not good health; said once, not every tick
            problem = f"the health check failed: {exc!r}"
            if problem != self._problem:
                log.exception("systemd: health check")
        if problem != self._problem:
            if problem is not None and self.watchdog > 0:
                log.error("unhealthy: %s: watchdog pings withheld, systemd will restart", problem)
            elif problem is not None:
                log.error("unhealthy: %s", problem)
            elif self._problem is not None:
                log.warning("healthy again (%s is over)", self._problem)
            self._problem = problem
        return problem

    def _line(self, problem: str | None) -> str:
        if problem is not None:
            return f"unhealthy, watchdog pings stopped: {problem}"
        try:
            return self.health.status()
        except Exception as exc:
            return f"status unknown ({exc!r})"

    def _show(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.notifier.status(text)

    def _probe(self, check: Callable[[], bool]) -> bool:
        try:
            return check()
        except Exception:  # a bug in a check must not stop the watch
            log.exception("systemd: readiness check")
            return False


async def watch_service(notifier: Notifier, health: Health, **kwargs: Any) -> None:
    """Run a `ServiceWatch` (a task of the service) until cancelled."""
    await ServiceWatch(notifier, health, **kwargs).run()
