"""The device runtime: one per configured device.

It owns the device's link and runs every exchange on it, one at a time with the profile's gap:
user commands go ahead of polls, repeated set-points are coalesced, busy replies are retried after
the profile's delay, and the poll plan backs off while the device is unreachable. It keeps the
reported state (value, when, from where) and the device's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from tribune.drivers.capabilities import (
    CompiledCapability,
    CompiledCommand,
    CompiledProfile,
    Value,
    check_parameter,
)
from tribune.drivers.codecs import make_codec
from tribune.drivers.codecs.base import Frame
from tribune.drivers.link import DeviceLink, TransportFactory
from tribune.drivers.reconnect import Backoff
from tribune.drivers.sessions import EscVpNetSession, PjlinkSession, Session, WakeupSession
from tribune.drivers.transport import ConnectionState, LineSettings
from tribune.errors import (
    AuthenticationError,
    ConfigError,
    DeviceBusyError,
    DeviceError,
    DeviceTimeoutError,
    LinkClosedError,
    LinkError,
    NotSupportedError,
    ProtocolError,
    TribuneError,
)
from tribune.profiles.schema import Profile, ValueType

log = logging.getLogger(__name__)


class Source(StrEnum):
    """Where a reading came from."""

    POLL = "poll"
    REPLY = "reply"
    UNSOLICITED = "unsolicited"
    SET = "set"


class HealthStatus(StrEnum):
    """A device's health as people see it."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Reading:
    """A reported value: what, when (wall clock) and from where."""

    value: Value
    at: float
    source: Source


@dataclass(slots=True)
class Health:
    """Online/offline/error, since when, the last error and the last reply."""

    status: HealthStatus = HealthStatus.UNKNOWN
    since: float = field(default_factory=time.time)
    last_error: str | None = None
    last_error_at: float | None = None
    last_reply_at: float | None = None
    latency_ms: float | None = None
    connection: ConnectionState = ConnectionState.DISCONNECTED


TRANSITIONS = ("warming", "cooling")
TRANSITION_POLL_SECONDS = 1.0
RESTING_POLL_SECONDS = 60.0  # a query a device refuses in standby is asked again this late

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class ExchangeStats:
    """Counters for metrics: reply latency histogram (seconds) and errors."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    count: int = 0
    total: float = 0.0
    errors: int = 0

    def observe(self, seconds: float) -> None:
        """Count one reply that took `seconds`."""
        self.count += 1
        self.total += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something a listener may care about: a reading changed, health changed, a notification."""

    device: str
    kind: str  # "state" | "health" | "notification"
    capability: str | None = None
    reading: Reading | None = None
    health: Health | None = None
    frame: Frame | None = None


Listener = Callable[[DeviceEvent], None]


class _BusyRetryError(Exception):
    """The device said busy: try this job again later, without holding up the others."""

    def __init__(self, error: DeviceBusyError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(eq=False, slots=True)
class _Job:
    """Queued user work; the futures of coalesced callers all get its result."""

    kind: str  # "get" | "set" | "action"
    name: str
    value: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    not_before: float = 0.0  # a busy device: when to try again
    busy_deadline: float | None = None  # when to give up trying

    @property
    def key(self) -> tuple[str, str, str] | None:
        """Set-points to the same capability (and output) coalesce; other jobs never do."""
        if self.kind != "set":
            return None
        output = ",".join(self.value) if isinstance(self.value, dict) else ""
        return ("set", self.name, output)


def session_for(profile: Profile, url: str, password: str | None) -> Session:
    """The handshake a device needs on this kind of link."""
    if profile.codec == "pjlink":
        return PjlinkSession(password)
    is_tcp = url.startswith(("tcp://", "socket://"))
    if is_tcp and profile.link.tcp_handshake == "escvpnet":
        return EscVpNetSession(password)
    if not is_tcp and profile.link.wakeup:
        return WakeupSession(
            profile.link.wakeup.encode("latin-1").decode("unicode_escape").encode("latin-1")
        )
    return Session()


def check_port(profile: Profile, port: str) -> None:
    """A USB profile needs a `usb://` port and nothing else does: `ConfigError` otherwise."""
    usb_port = port.startswith("usb://")
    if profile.codec == "usb" and not usb_port:
        raise ConfigError(
            f"profile {profile.id!r} talks USB control transfers: its port is usb://VID:PID "
            f"(e.g. usb://16c0:05df?serial=ABCDE; `tribune usb scan` lists them), not {port!r}"
        )
    if usb_port and profile.codec != "usb":
        raise ConfigError(
            f"{port}: a usb:// port is for USB profiles; profile {profile.id!r} speaks "
            f"{profile.codec} over a serial line or TCP"
        )
    if usb_port:
        from tribune.drivers.usb_transport import parse_usb_url

        parse_usb_url(port)  # a malformed one is a config error now, not at every reconnect


def line_settings(profile: Profile, overrides: Mapping[str, Any] | None = None) -> LineSettings:
    """The profile's serial settings with a device's overrides on top."""
    base = profile.link.serial.model_dump() if profile.link.serial else {}
    merged = {**base, **dict(overrides or {})}
    return LineSettings(**merged)


class DeviceRuntime:
    """Drives one device: its link, queue, poll plan, reported state and health."""

    def __init__(
        self,
        device_id: str,
        profile: Profile,
        port: str,
        *,
        options: Mapping[str, str] | None = None,
        line: Mapping[str, Any] | None = None,
        password: str | None = None,
        poll: bool = True,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        check_port(profile, port)
        self.id = device_id
        self.profile = profile
        self.compiled = CompiledProfile(profile, options)
        self.port = port
        self.timing = profile.timing
        self.options = dict(self.compiled.options)
        self.polling = poll
        self.state: dict[str, Reading] = {}
        self.health = Health()
        self.stats = ExchangeStats()
        self._listeners: list[Listener] = []
        self.link = DeviceLink(
            port,
            codec=make_codec(profile.codec, profile.codec_options),
            settings=line_settings(profile, line),
            session=session_for(profile, port, password),
            on_unsolicited=self._on_unsolicited,
            on_lost=self._on_lost,
            handshake_timeout=max(3.0, profile.timing.reply_timeout),
            name=device_id,
            transport_factory=transport_factory,
        )
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(self.timing.reconnect_min, self.timing.reconnect_max)
        self._next_poll: dict[str, float] = {}
        self._poll_every = {entry.get: entry.every for entry in profile.poll}
        self._readback: dict[str, None] = {}  # read once after a set, ahead of polls (ordered)
        self._outputs_left: dict[str, list[str]] = {}  # a route poll that let a user job go first
        self._current: _Job | None = None
        self._replied = False  # a reply came on the current connection
        self._last_exchange_end = 0.0
        self._connect_error: TribuneError | None = None
        self._transition: tuple[str, float] | None = None  # ("warming"|"cooling", until)
        self._retry_at = 0.0  # while unreachable: when to try again
        # When the worker's current step began (monotonic); None while it waits for work or is
        # stopped. A step that lasts far beyond its timeouts is wedged (tribune/systemd.py).
        self.busy_since: float | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start driving the device (returns at once; the link opens in the background)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"device-{self.id}")

    @property
    def worker_died(self) -> bool:
        """Whether the worker task ended although nobody stopped it."""
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        """Stop and close the link; queued commands fail with `LinkClosedError`."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.busy_since = None
        await self.link.close()
        stopped = LinkClosedError(f"{self.id}: stopped")
        if self._current is not None:
            self._settle(self._current, stopped)
            self._current = None
        self._fail_queue(stopped)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every event; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- commands ---------------------------------------------------------------------------

    async def get(self, capability: str, *, output: str | None = None) -> Value:
        """Read a capability from the device now (ahead of polls)."""
        cap = self.compiled.capability(capability)
        if cap.get is None:
            raise NotSupportedError(f"{self.id}: {capability} cannot be read")
        params = self.compiled.get_params(cap, output)
        result: Value = await self._submit(_Job("get", capability, params=params))
        return result

    async def set(self, capability: str, value: Value) -> None:
        """Set a capability; waits until the device acknowledges (busy is retried)."""
        cap = self.compiled.capability(capability)
        self.compiled.set_params(cap, value)  # validate now, so a bad value fails at the caller
        await self._submit(_Job("set", capability, value=value))

    async def action(self, name: str, params: Mapping[str, str] | None = None) -> None:
        """Run a one-shot action (volume step, dial, camera preset)."""
        if name not in self.compiled.actions:
            known = ", ".join(sorted(self.compiled.actions)) or "none"
            raise NotSupportedError(f"{self.id}: no action {name!r} (has: {known})")
        checked = {key: check_parameter(key, str(value)) for key, value in (params or {}).items()}
        await self._submit(_Job("action", name, params=checked))

    def _submit(self, job: _Job) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        key = job.key
        if key is not None:
            for queued in self._queue:
                if queued.key == key:
                    # A dragged slider: only the last value is sent; every caller hears the result.
                    queued.value = job.value
                    queued.futures.append(future)
                    self._wakeup.set()
                    return future
        job.futures.append(future)
        self._queue.append(job)
        self._wakeup.set()
        return future

    # --- the worker -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self.busy_since = time.monotonic()
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken device never takes the room down
                log.exception("%s: unexpected error in the device runtime", self.id)
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        job = self._runnable_job()
        if self._retry_at > time.monotonic() and job is None:
            # Unreachable: wait out the backoff, unless someone asks for something meanwhile.
            await self._wait(self._retry_at - time.monotonic())
            return
        if not self.link.is_open and not await self._connect():
            return
        if job is not None:
            self._queue.remove(job)
            self._current = job  # left set if cancelled, so stop() can fail its callers
            await self._run_job(job)
            self._current = None
            return
        due = self._due_poll()
        if due is not None:
            await self._poll(due)
            return
        await self._wait(min(self._seconds_to_next_poll(), self._seconds_to_next_job()))

    def _runnable_job(self) -> _Job | None:
        now = time.monotonic()
        return next((job for job in self._queue if job.not_before <= now), None)

    def _seconds_to_next_job(self) -> float:
        if not self._queue:
            return 3600.0
        return max(0.0, min(job.not_before for job in self._queue) - time.monotonic())

    async def _wait(self, seconds: float) -> None:
        self._wakeup.clear()
        self.busy_since = None  # idle, however long: not wedged
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, seconds)):
                    await self._wakeup.wait()
        finally:
            self.busy_since = time.monotonic()

    def _unreachable(self, status: HealthStatus, error: str) -> None:
        """Mark the device unreachable and schedule the next attempt by the backoff."""
        self._set_health(status, error)
        self._retry_at = time.monotonic() + self._backoff.next_delay()

    async def _connect(self) -> bool:
        self._set_connection(ConnectionState.CONNECTING)
        try:
            await self.link.open()
        except AuthenticationError as exc:
            self._connect_failed(exc, HealthStatus.ERROR)
            return False
        except (LinkError, DeviceError, ProtocolError) as exc:
            self._connect_failed(exc, HealthStatus.OFFLINE)
            return False
        except Exception as exc:  # a driver fault (termios on an odd port) is still an answer
            log.exception("%s: opening %s failed unexpectedly", self.id, self.port)
            self._connect_failed(LinkError(f"{self.port}: {exc}"), HealthStatus.ERROR)
            return False
        self._set_connection(ConnectionState.CONNECTED)
        self._connect_error = None
        self._replied = False
        log.info("%s: connected to %s", self.id, self.port)
        # Re-read everything: the device may have changed while we could not see it.
        now = time.monotonic()
        self._next_poll = {entry.get: now for entry in self.profile.poll}
        if not self.profile.poll:
            self._mark_online()
        return True

    def _connect_failed(self, exc: TribuneError, status: HealthStatus) -> None:
        self._set_connection(ConnectionState.FAILED)
        if str(exc) != str(self._connect_error):
            log.warning("%s: cannot connect: %s", self.id, exc)
        self._connect_error = exc
        self._unreachable(status, str(exc))
        self._fail_queue(exc)

    async def _run_job(self, job: _Job) -> None:
        try:
            result = await self._execute(job)
        except _BusyRetryError as busy:
            now = time.monotonic()
            if job.busy_deadline is None:
                job.busy_deadline = now + self.timing.busy_max_wait
            if now + self.timing.busy_retry_delay > job.busy_deadline:
                self._settle(job, busy.error)
                return
            log.info("%s: busy (%s), retrying in %g s", self.id, busy, self.timing.busy_retry_delay)
            job.not_before = now + self.timing.busy_retry_delay
            self._queue.append(job)  # others may run meanwhile; a newer set-point merges into it
            return
        except TribuneError as exc:
            self._settle(job, exc)
            return
        except Exception as exc:  # a bug must not leave the caller waiting forever
            log.exception("%s: %s %s failed unexpectedly", self.id, job.kind, job.name)
            self._settle(job, exc)
            return
        self._settle(job, None, result)

    @staticmethod
    def _settle(job: _Job, error: Exception | None, result: Any = None) -> None:
        for future in job.futures:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    async def _execute(self, job: _Job) -> Value | None:
        if job.kind == "get":
            cap = self.compiled.capability(job.name)
            assert cap.get is not None
            return await self._read(cap, job.params, Source.REPLY, user=True)
        if job.kind == "set":
            cap = self.compiled.capability(job.name)
            command, params = self.compiled.set_params(cap, job.value)
            before = self.state.get(cap.name)
            self._before_set(cap, job.value)
            try:
                await self._exchange(command, params, user=True)
            except TribuneError:
                self._take_back_hope(cap.name, before)
                if cap.readable and cap.type is not ValueType.ROUTE:
                    self._readback[cap.name] = None  # show what the device says, not the hope
                raise
            self._after_set(cap, job.value)
            return None
        command = self.compiled.actions[job.name]
        # Not state: a dial or a volume step sent twice happens twice, so never re-send one.
        await self._exchange(command, job.params, user=True, repeatable=False)
        return None

    def _before_set(self, cap: CompiledCapability, value: Value) -> None:
        """Some projectors acknowledge "on" only when warm (Epson: up to 100 s): say so now."""
        if cap.type is not ValueType.POWER:
            return
        current = self.state.get(cap.name)
        reported = current.value if current is not None else None
        if value == "on" and self.timing.warmup and reported in (None, "off", "standby"):
            self._record(cap.name, "warming", Source.SET)
        elif value in ("off", "standby") and self.timing.cooldown and reported in ("on", "warming"):
            self._record(cap.name, "cooling", Source.SET)

    def _take_back_hope(self, capability: str, before: Reading | None) -> None:
        """A set that failed: the warming/cooling shown for it was never true. Show what was
        known before it (the read-back may be refused too, and a device shown cooling counts
        as resting, whose refused polls wait a minute)."""
        hoped = self.state.get(capability)
        if hoped is None or hoped is before or hoped.source is not Source.SET:
            return
        if hoped.value not in TRANSITIONS:
            return
        if before is None:
            del self.state[capability]
        else:
            self.state[capability] = before
        log.info("%s: %s = %s (the set failed)", self.id, capability, before and before.value)
        self._emit(DeviceEvent(self.id, "state", capability=capability, reading=before))

    def _after_set(self, cap: CompiledCapability, value: Value) -> None:
        if cap.type is ValueType.POWER:
            now = time.monotonic()
            if value == "on" and self.timing.warmup:
                self._transition = ("warming", now + self.timing.warmup)
            elif value in ("off", "standby") and self.timing.cooldown:
                self._transition = ("cooling", now + self.timing.cooldown)
        if cap.readable and cap.type is not ValueType.ROUTE:
            # Read back what the device now says rather than assume the set value.
            self._readback[cap.name] = None
            self._wakeup.set()
        elif cap.type is ValueType.ROUTE and isinstance(value, dict):
            # One output was tied: the others keep their ties.
            self._record(cap.name, {**self._route_state(), **value}, Source.SET)
        else:
            self._record(cap.name, value, Source.SET)

    async def _poll(self, capability: str) -> None:
        self._readback.pop(capability, None)
        every = self._poll_every.get(capability)
        if every is not None:
            power = self.state.get("power")
            if capability == "power" and power is not None and power.value in TRANSITIONS:
                # Warming or cooling: look more often, so "on" is seen soon after it is true.
                every = min(every, TRANSITION_POLL_SECONDS)
            self._next_poll[capability] = time.monotonic() + every
        cap = self.compiled.capability(capability)
        try:
            if cap.type is ValueType.ROUTE:
                outputs = self._outputs_left.pop(capability, None) or list(cap.spec.outputs or [])
                while outputs:
                    await self._read(cap, {"output": outputs.pop(0)}, Source.POLL, user=False)
                    if outputs and self._runnable_job() is not None:
                        # A tap is waiting: let it go first, then read the other outputs.
                        self._outputs_left[capability] = outputs
                        self._next_poll[capability] = time.monotonic()
                        break
            else:
                await self._read(cap, {}, Source.POLL, user=False)
        except DeviceBusyError:
            log.debug("%s: %s busy, poll skipped", self.id, capability)
        except (DeviceError, ProtocolError) as exc:
            if self._resting() and isinstance(exc, DeviceError):
                log.debug("%s: %s not answered while %s", self.id, capability, self._power())
                if every is not None:  # ask again later, not every few seconds
                    self._next_poll[capability] = time.monotonic() + max(
                        every, RESTING_POLL_SECONDS
                    )
            else:
                log.info("%s: poll of %s failed: %s", self.id, capability, exc)
        except (DeviceTimeoutError, LinkError):
            pass  # health is already updated by _exchange

    async def _read(
        self, cap: CompiledCapability, params: Mapping[str, Any], source: Source, *, user: bool
    ) -> Value:
        assert cap.get is not None
        frame, groups = await self._exchange(cap.get, params, user=user)
        value = self.compiled.decode_value(cap, groups)
        if cap.type is ValueType.ROUTE:
            output = str(params["output"])
            merged = dict(self._route_state())
            merged[output] = str(value)
            self._record(cap.name, merged, source)
            return {output: str(value)}
        value = self._record(cap.name, value, source)
        if frame is not None:
            self._update_siblings(cap, frame, source)
        return value

    def _route_state(self) -> dict[str, str]:
        current = self.state.get("route")
        return dict(current.value) if current and isinstance(current.value, dict) else {}

    def _update_siblings(self, cap: CompiledCapability, frame: Frame, source: Source) -> None:
        """One reply may answer several capabilities (PJLink AVMT: mute and video mute)."""
        for other in self.compiled.capabilities.values():
            if other is cap or other.get is None or other.get.reply is None:
                continue
            if cap.get is None or other.get.send.text != cap.get.send.text:
                continue
            groups = other.get.reply.match(frame.data)
            if groups is None:
                continue
            with contextlib.suppress(ProtocolError):
                self._record(other.name, self.compiled.decode_value(other, groups), source)
                self._readback.pop(other.name, None)
                every = self._poll_every.get(other.name)
                if every is not None and other.name in self._next_poll:
                    self._next_poll[other.name] = time.monotonic() + every

    async def _exchange(
        self,
        command: CompiledCommand,
        params: Mapping[str, Any],
        *,
        user: bool,
        repeatable: bool = True,
    ) -> tuple[Frame | None, dict[str, str]]:
        """One request/reply with gap, retries on silence, busy handling and one reconnect.

        Only `repeatable` commands (reads, set-points) are re-sent after a timeout or a dropped
        link: the device may have carried out the first one.
        """
        payload = command.render({**self.options, **params})
        timeout = command.timeout or self.timing.reply_timeout
        timeouts = 0
        reconnected = False
        while True:
            await self._respect_gap()
            started = time.monotonic()
            garbled_before = self.link.frame_errors
            try:
                if not self.link.is_open:
                    raise LinkClosedError(f"{self.id}: link is not open")
                if command.reply is None:
                    await self.link.send_only(payload)
                    return None, {}
                frame = await self.link.request(
                    payload, self._acceptor(command, {**self.options, **params}), timeout
                )
            except DeviceTimeoutError as exc:
                timeouts += 1
                garbled = self.link.frame_errors - garbled_before
                if garbled:
                    exc = DeviceTimeoutError(
                        f"{exc} ({garbled} garbled frames received: check the baud rate and "
                        "line settings)"
                    )
                if repeatable and timeouts <= self.timing.retries:
                    log.info(
                        "%s: no reply, retrying (%d/%d)", self.id, timeouts, self.timing.retries
                    )
                    # A late answer to the first try must not be taken for the retry's answer.
                    await self.link.discard_until_quiet(min(0.3, timeout / 2), timeout)
                    self._last_exchange_end = time.monotonic()
                    continue
                self._last_exchange_end = time.monotonic()
                self._unreachable(HealthStatus.OFFLINE, str(exc))
                await self.link.close()  # reopen from scratch: a hung session, a replugged port
                raise exc from None
            except AuthenticationError as exc:
                self._unreachable(HealthStatus.ERROR, str(exc))
                await self.link.close()
                raise
            except LinkClosedError as exc:
                # PJLink projectors close idle connections; a replug closes the port: reopen once.
                # A poll just ends here: the worker reconnects and judges reachability then.
                if reconnected or not user or not repeatable:
                    raise
                reconnected = True
                if not await self._connect():
                    assert self._connect_error is not None
                    raise self._connect_error from exc
                continue
            self._last_exchange_end = time.monotonic()
            error = self.compiled.error_in(frame)
            if isinstance(error, DeviceBusyError):
                self._mark_online(started)
                if not user:
                    raise error
                resting = await self._resting_power(command)
                if resting is not None:
                    # Waiting will not help: a projector in standby stays "unavailable".
                    raise DeviceBusyError(
                        f"{error}; the device is {resting}: turn it on first", code=error.code
                    )
                raise _BusyRetryError(error)
            if isinstance(error, AuthenticationError):
                self._set_health(HealthStatus.ERROR, str(error))
                raise error
            self._mark_online(started)
            if error is not None:
                if user or not self._resting():
                    # A display in standby refuses most queries: that is no fault of the poll.
                    self._note_error(str(error))
                raise error
            assert command.reply is not None
            groups = command.reply.match(frame.data)
            if groups is None:
                raise ProtocolError(f"{self.id}: unexpected reply {frame.raw!r}")
            return frame, groups

    async def _resting_power(self, command: CompiledCommand) -> str | None:
        """The power state if the device is off or in standby (so busy will not pass)."""
        cap = self.compiled.capabilities.get("power")
        if cap is None or cap.get is None or command in (cap.get, cap.set, *cap.set_each.values()):
            return None
        try:
            value = await self._read(cap, {}, Source.REPLY, user=False)
        except TribuneError:
            return None
        return str(value) if value in ("off", "standby") else None

    def _acceptor(
        self, command: CompiledCommand, params: Mapping[str, Any]
    ) -> Callable[[Frame], bool]:
        reply = command.reply
        assert reply is not None

        def accept(frame: Frame) -> bool:
            if self.compiled.error_in(frame) is not None:
                return True
            groups = reply.match(frame.data)
            # A reply that echoes a parameter must echo ours: `Out3 In4 All` from the front
            # panel is not the answer to `1*2!`, nor `VID 3>2` the answer to `VID? 1`.
            return groups is not None and all(
                _same_wire(got, params[name])
                for name, got in groups.items()
                if name != "value" and name in params
            )

        return accept

    async def _respect_gap(self) -> None:
        wait = self._last_exchange_end + self.timing.gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    # --- polls ------------------------------------------------------------------------------

    def _due_poll(self) -> str | None:
        if self._readback:
            return next(iter(self._readback))
        if not self.polling or not self._next_poll:
            return None
        name, due = min(self._next_poll.items(), key=lambda item: item[1])
        return name if due <= time.monotonic() else None

    def _seconds_to_next_poll(self) -> float:
        if not self.polling or not self._next_poll:
            return 3600.0
        return max(0.0, min(self._next_poll.values()) - time.monotonic())

    # --- state and health -------------------------------------------------------------------

    def _record(self, capability: str, value: Value, source: Source) -> Value:
        value = self._apply_transition(capability, value)
        previous = self.state.get(capability)
        reading = Reading(value, time.time(), source)
        self.state[capability] = reading
        if previous is None or previous.value != value:
            log.info("%s: %s = %s (%s)", self.id, capability, value, source)
            self._emit(DeviceEvent(self.id, "state", capability=capability, reading=reading))
            if capability == "power" and value == "on" and previous is not None:
                self._forget_unpolled()
                now = time.monotonic()  # and read everything else now that it answers
                self._next_poll = dict.fromkeys(self._next_poll, now)
        return value

    def _power(self) -> Value | None:
        reading = self.state.get("power")
        return reading.value if reading is not None else None

    def _resting(self) -> bool:
        """Whether the device is off, in standby or between the two (most queries refused)."""
        return self._power() in ("off", "standby", "warming", "cooling")

    def _forget_unpolled(self) -> None:
        """A device that just came on has forgotten what it was told and we never read back."""
        for name in list(self.state):
            if name != "power" and name not in self._poll_every:
                del self.state[name]

    def _apply_transition(self, capability: str, value: Value) -> Value:
        """A projector that says "off" right after "on" is warming up, not off (and vice versa)."""
        if capability != "power" or self._transition is None:
            return value
        phase, until = self._transition
        if time.monotonic() > until or value in ("warming", "cooling"):
            self._transition = None if time.monotonic() > until else self._transition
            return value
        if phase == "warming" and value in ("off", "standby"):
            return "warming"
        if phase == "cooling" and value == "on":
            return "cooling"
        self._transition = None
        return value

    def _on_unsolicited(self, frame: Frame) -> None:
        for cap in self.compiled.capabilities.values():
            if self.compiled.error_in(frame) is not None:
                break
            if cap.type is ValueType.ROUTE:
                self._tie_from(cap, frame)
                continue
            if cap.get is None or cap.get.reply is None:
                continue
            groups = cap.get.reply.match(frame.data)
            if groups is None:
                continue
            try:
                self._record(cap.name, self.compiled.decode_value(cap, groups), Source.UNSOLICITED)
            except ProtocolError:
                continue
        self._emit(DeviceEvent(self.id, "notification", frame=frame))

    def _tie_from(self, cap: CompiledCapability, frame: Frame) -> None:
        """Record a tie a switcher reports on its own (front panel), in a reply's form."""
        for command, source in ((cap.get, "value"), (cap.set, "input")):
            if command is None or command.reply is None:
                continue
            groups = command.reply.match(frame.data)
            if groups is None or "output" not in groups or source not in groups:
                continue
            outputs = cap.spec.outputs or [groups["output"]]
            output = next((o for o in outputs if _same_wire(o, groups["output"])), None)
            if output is None:
                return
            try:
                value = self.compiled.decode_value(cap, {"value": groups[source]})
            except ProtocolError:
                return
            self._record(cap.name, {**self._route_state(), output: str(value)}, Source.UNSOLICITED)
            return

    def _on_lost(self, exc: Exception) -> None:
        log.info("%s: link lost: %s", self.id, exc)
        self._set_connection(ConnectionState.DISCONNECTED)
        if not self._replied and self.health.status is not HealthStatus.ERROR:
            # Accepted and dropped without a word (a busy serial server, crashing firmware):
            # back off instead of reconnecting in a tight loop.
            self._unreachable(HealthStatus.OFFLINE, "the device closed the link without answering")
        self._wakeup.set()

    def _mark_online(self, started: float | None = None) -> None:
        self._replied = True
        now = time.time()
        self.health.last_reply_at = now
        if started is not None:
            seconds = time.monotonic() - started
            self.health.latency_ms = round(seconds * 1000, 2)
            self.stats.observe(seconds)
        if self.health.status is not HealthStatus.ONLINE:
            self._backoff.reset()
            self._retry_at = 0.0
            self._set_health(HealthStatus.ONLINE, None)

    def _note_error(self, message: str) -> None:
        self.stats.errors += 1
        self.health.last_error = message
        self.health.last_error_at = time.time()

    def _set_health(self, status: HealthStatus, error: str | None) -> None:
        if error is not None:
            self._note_error(error)
        if status is self.health.status:
            return
        self.health.status = status
        self.health.since = time.time()
        level = logging.INFO if status is HealthStatus.ONLINE else logging.WARNING
        log.log(level, "%s: %s%s", self.id, status, f" ({error})" if error else "")
        self._emit(DeviceEvent(self.id, "health", health=replace(self.health)))

    def _set_connection(self, state: ConnectionState) -> None:
        self.health.connection = state

    def _emit(self, event: DeviceEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("%s: listener failed", self.id)

    def _fail_queue(self, exc: Exception) -> None:
        while self._queue:
            self._settle(self._queue.popleft(), exc)


def _same_wire(got: str, sent: Any) -> bool:
    """Whether a value echoed in a reply is the one sent (`03` is `3`; case is ignored)."""
    a, b = str(got).strip(), str(sent).strip()
    if a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a.upper() == b.upper()
