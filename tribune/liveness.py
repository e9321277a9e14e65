"""Whether a running service is healthy, and the line a technician reads in `systemctl status`.

Healthy, for the room: every device runtime's worker and reconciler task is alive (not ended
without being stopped) and no worker is stuck in one step far beyond what its profile's timeouts
allow. A device that is merely offline (unplugged, switched off) is healthy: its runtime waits
out the backoff and retries, which is what it should do. A paused device (profile flash) is not
looked at. `tribune/systemd.py` withholds the watchdog pings while there is a problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.drivers.transport import ConnectionState
from tribune.profiles.schema import ValueType
from tribune.room import Room
from tribune.systemd import STALL_FLOOR, Health

CONNECT_BUDGET = 6.0  # a TCP connect (3 s) and a slow handshake, once


def stall_limit(runtime: DeviceRuntime, floor: float = STALL_FLOOR) -> float:
    """How long one worker step may last before the runtime counts as wedged.

    A step is at most a connect, one reconnect and a few exchanges (a power read-back while
    busy, each output of a route poll), each exchange `retries + 1` tries of `reply_timeout`
    plus as long again to drain a late reply. Twice that, and never under `floor`.
    """
    timing = runtime.timing
    exchange = (timing.retries + 1) * 2 * timing.reply_timeout + timing.gap
    outputs = max(
        (
            len(cap.spec.outputs or ())
            for cap in runtime.compiled.capabilities.values()
            if cap.type is ValueType.ROUTE
        ),
        default=1,
    )
    handshake = CONNECT_BUDGET + max(3.0, timing.reply_timeout)
    return max(floor, 2 * (2 * handshake + exchange * (outputs + 2)))


def _names(ids: list[str], most: int = 3) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


class RoomHealth:
    """The room service's health, readiness and status line."""

    def __init__(
        self,
        room: Room,
        link: Callable[[], Any] | None = None,
        *,
        limit: Callable[[DeviceRuntime], float] = stall_limit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`link`: returns the hub link (a `SyncClient`) or None; `limit`: seconds per step."""
        self.room = room
        self.link = link or (lambda: None)
        self.limit = limit
        self.clock = clock

    def _driven(self) -> list[tuple[str, DeviceRuntime]]:
        return [(i, r) for i, r in self.room.runtimes.items() if i not in self.room.maintenance]

    def devices_opened(self) -> bool:
        """Every device has had its first try at connecting (opened, or failed and retrying)."""
        settled = (ConnectionState.CONNECTED, ConnectionState.FAILED)
        return all(
            r.health.connection in settled or r.health.status is not HealthStatus.UNKNOWN
            for _, r in self._driven()
        )

    def problem(self) -> str | None:
        """Why the service is unhealthy, or None."""
        now = self.clock()
        for device_id, runtime in self._driven():
            if runtime.worker_died:
                return f"device {device_id}: its runtime task has ended"
            reconciler = self.room.reconcilers.get(device_id)
            if reconciler is not None and reconciler.died:
                return f"device {device_id}: its reconcile task has ended"
            busy = runtime.busy_since
            if busy is not None and now - busy > self.limit(runtime):
                return f"device {device_id}: its runtime is stuck ({now - busy:.0f} s in one step)"
        return None

    def status(self) -> str:
        """`serving room baku/room-1: 5/6 devices online (offline: board), hub linked`."""
        room = self.room
        total = len(room.config.devices)
        online = [i for i, r in room.runtimes.items() if r.health.status is HealthStatus.ONLINE]
        line = f"serving room {room.id}: {len(online)}/{total} devices online"
        offline = [i for i in room.config.devices if i not in online]
        paused = [i for i in offline if i in room.maintenance]
        broken = [i for i in offline if i in room.broken]
        down = [i for i in offline if i not in paused and i not in broken]
        notes = [
            f"{what}: {_names(ids)}"
            for what, ids in (("offline", down), ("paused", paused), ("not started", broken))
            if ids
        ]
        if notes:
            line += f" ({'; '.join(notes)})"
        link = self.link()
        if link is not None:
            line += ", hub linked" if link.connected.is_set() else ", hub not linked"
        return line

    def health(self) -> Health:
        """For `ServiceWatch`."""
        return Health(ready=self.devices_opened, problem=self.problem, status=self.status)
