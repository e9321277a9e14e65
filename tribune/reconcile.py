"""Drive one device's reported state toward its desired state, like a controller.

Power first: other capabilities wait until the device is on. A projector warming up or cooling
down is waited out (an "on" during cool-down is sent once it is off), busy replies are the
runtime's to retry, and a device that comes back gets its desired state again. Each desired
capability is `converged`, `pending` (with the reason) or `failed` (with the device's error); a
failed value is tried again every `FAILED_RETRY_SECONDS`, since a device often refuses only for
the moment (busy, mid-transition), and its failure is logged and audited once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from tribune.drivers.capabilities import Value
from tribune.drivers.runtime import DeviceEvent, DeviceRuntime, HealthStatus
from tribune.errors import (
    DeviceBusyError,
    DeviceError,
    DeviceTimeoutError,
    LinkError,
    NotSupportedError,
    ProtocolError,
    TribuneError,
)

log = logging.getLogger(__name__)

RESTING = ("off", "standby")
RECHECK_SECONDS = 5.0
FAILED_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Status:
    """Where one desired capability stands."""

    state: Literal["converged", "pending", "failed"]
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"state": self.state, "reason": self.reason}


CONVERGED = Status("converged")

FailureHook = Callable[[str, str, Value, str], Awaitable[None]]


class DeviceReconciler:
    """Owns the commands that move one device toward what the room wants of it."""

    def __init__(
        self,
        runtime: DeviceRuntime,
        desired: Callable[[], dict[str, Value]],
        *,
        on_change: Callable[[], None] | None = None,
        on_failure: FailureHook | None = None,
    ) -> None:
        self.runtime = runtime
        self.desired = desired
        self.on_change = on_change
        self.on_failure = on_failure
        self.status: dict[str, Status] = {}
        self._evaluated = False
        self._wake = asyncio.Event()
        self._inflight: dict[str, tuple[Value, asyncio.Task[None]]] = {}
        self._failed: dict[str, tuple[Value, str, float]] = {}  # value, error, when
        # Acknowledged sets whose read-back has not come yet: not sent again meanwhile.
        self._confirming: dict[str, tuple[Value, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def converged(self) -> bool:
        """Whether every desired capability is converged (never before the first look)."""
        return self._evaluated and all(s.state == "converged" for s in self.status.values())

    async def start(self) -> None:
        """Start reconciling in the background."""
        self._unsubscribe = self.runtime.subscribe(self._on_device_event)
        self._task = asyncio.create_task(self._run(), name=f"reconcile-{self.runtime.id}")

    @property
    def died(self) -> bool:
        """Whether the reconcile task ended although nobody stopped it."""
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        """Stop reconciling (commands in flight are cancelled)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        tasks = [t for t in (self._task, *self._sends) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look again now (desired state changed)."""
        self._wake.set()

    def forget_failure(self, capability: str | None = None) -> None:
        """A new intent: try again even a value that failed before."""
        if capability is None:
            self._failed.clear()
        else:
            self._failed.pop(capability, None)
        self._wake.set()

    def _on_device_event(self, event: DeviceEvent) -> None:
        health = event.health if event.kind == "health" else None
        if health is not None and health.status is HealthStatus.ONLINE:
            # Back: apply the desired state again, even what failed before the outage.
            self._failed.clear()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception:  # one broken device never takes the room down
                log.exception("%s: reconcile failed", self.runtime.id)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_SECONDS):
                    await self._wake.wait()

    # --- deciding ---------------------------------------------------------------------------

    def evaluate(self) -> None:
        """Compare desired with reported; start what is missing; update the statuses."""
        desired = dict(self.desired())
        status: dict[str, Status] = {}
        health = self.runtime.health.status
        reachable = health is HealthStatus.ONLINE
        compiled = self.runtime.compiled
        power_wanted = desired.get("power")
        has_power = "power" in compiled.capabilities
        power_now = self._power_now()
        for capability, value in desired.items():
            if capability != "power" and power_wanted in RESTING:
                continue  # dormant while the device is meant to be off
            if capability != "power" and power_wanted is None and power_now in RESTING:
                continue  # nobody asked for it on: an input choice waits for the next class
            if not reachable:
                reason = "offline" if health is not HealthStatus.ERROR else "error"
                last = self.runtime.health.last_error
                status[capability] = Status("pending", f"{reason}: {last}" if last else reason)
                continue
            if capability == "power":
                status[capability] = self._power(value)
            elif has_power and self._power_now() != "on":
                status[capability] = Status("pending", self._waiting_for_power())
            else:
                status[capability] = self._plain(capability, value)
        changed = status != self.status or not self._evaluated
        self._evaluated = True
        if changed:
            self.status = status
            if self.on_change is not None:
                self.on_change()

    def _power_now(self) -> Value | None:
        reading = self.runtime.state.get("power")
        return reading.value if reading is not None else None

    def _waiting_for_power(self) -> str:
        now = self._power_now()
        if now in ("warming", "cooling"):
            return str(now)
        return "waiting for power"

    def _power(self, wanted: Value) -> Status:
        now = self._power_now()
        if now == wanted or (wanted in RESTING and now in RESTING):
            self._failed.pop("power", None)
            self._confirming.pop("power", None)
            return CONVERGED
        if now == "cooling" and wanted == "on":
            return Status("pending", "cooling")  # "on" goes out once it is off
        if now == "warming" and wanted == "on":
            return Status("pending", "warming")
        if now == "cooling" and wanted in RESTING:
            return Status("pending", "cooling")
        return self._apply("power", wanted, "warming" if wanted == "on" else "cooling")

    def _plain(self, capability: str, wanted: Value) -> Status:
        cap = self.runtime.compiled.capabilities.get(capability)
        if cap is None:
            return Status("failed", f"the device has no {capability}")
        reading = self.runtime.state.get(capability)
        if reading is not None and self.runtime.compiled.same_value(cap, wanted, reading.value):
            self._failed.pop(capability, None)
            self._confirming.pop(capability, None)
            return CONVERGED
        return self._apply(capability, wanted, "applying")

    def _apply(self, capability: str, wanted: Value, reason: str) -> Status:
        failed = self._failed.get(capability)
        if failed is not None and failed[0] == wanted:
            inflight = self._inflight.get(capability)
            due = time.monotonic() >= failed[2] + FAILED_RETRY_SECONDS
            if due and (inflight is None or inflight[0] != wanted):
                self._start_send(capability, wanted)  # the refusal may have been the moment's
            return Status("failed", failed[1])
        confirming = self._confirming.get(capability)
        if confirming is not None:
            if confirming[0] == wanted and time.monotonic() < confirming[1]:
                return Status("pending", reason)
            del self._confirming[capability]
        inflight = self._inflight.get(capability)
        if inflight is not None and inflight[0] == wanted:
            return Status("pending", reason)
        # A different value in flight: latest intent wins (the runtime coalesces a queued
        # set-point with this one).
        self._start_send(capability, wanted)
        return Status("pending", reason)

    def _start_send(self, capability: str, wanted: Value) -> None:
        task = asyncio.create_task(self._send(capability, wanted))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        self._inflight[capability] = (wanted, task)

    async def _send(self, capability: str, wanted: Value) -> None:
        try:
            if isinstance(wanted, dict):
                # A route: one tie per output, only where the switcher differs.
                reading = self.runtime.state.get(capability)
                now = (
                    reading.value if reading is not None and isinstance(reading.value, dict) else {}
                )
                for output, source in wanted.items():
                    if now.get(output) != source:
                        await self.runtime.set(capability, {output: source})
            else:
                await self.runtime.set(capability, wanted)
            grace = max(2.0, 3 * self.runtime.timing.reply_timeout)
            self._confirming[capability] = (wanted, time.monotonic() + grace)
        except DeviceBusyError as exc:
            self._fail(capability, wanted, f"busy: {exc}")
        except (DeviceTimeoutError, LinkError):
            pass  # the device is offline: the desired state is applied again when it returns
        except (DeviceError, ProtocolError, NotSupportedError) as exc:
            self._fail(capability, wanted, str(exc))
        except TribuneError as exc:
            self._fail(capability, wanted, str(exc))
        finally:
            current = self._inflight.get(capability)
            if current is not None and current[1] is asyncio.current_task():
                del self._inflight[capability]
            self._wake.set()

    def _fail(self, capability: str, wanted: Value, message: str) -> None:
        previous = self._failed.get(capability)
        self._failed[capability] = (wanted, message, time.monotonic())
        if previous is not None and previous[:2] == (wanted, message):
            log.info("%s: %s -> %s still fails: %s", self.runtime.id, capability, wanted, message)
            return  # said and audited the first time
        log.warning("%s: %s -> %s failed: %s", self.runtime.id, capability, wanted, message)
        if self.on_failure is not None:
            hook = self.on_failure(self.runtime.id, capability, wanted, message)
            task = asyncio.ensure_future(hook)
            task.add_done_callback(_log_hook_error)


def _log_hook_error(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("failure hook failed: %s", task.exception())
