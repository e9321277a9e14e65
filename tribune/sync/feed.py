"""What the hub hears about: the room's bus turned into outbox events and state refreshes.

Events (`type`): `audit` (every audit entry), `help` (an instructor's help request), `change`
(a device's power or input, the room's source), `alert` (device offline/online, a device error,
lamp hours over the threshold, outbox overflow; `active` false when it clears).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tribune.events import RoomEvent, Subscription
from tribune.room import Room
from tribune.sync.outbox import Outbox

log = logging.getLogger(__name__)

CHANGES = ("power", "input")


class RoomFeed:
    """Follows `room.bus`: queues events in the outbox, marks the retained state dirty."""

    def __init__(
        self, room: Room, outbox: Outbox, *, lamp_hours_alert: int, on_change: Callable[[], None]
    ) -> None:
        self.room = room
        self.outbox = outbox
        self.lamp_hours_alert = lamp_hours_alert
        self.on_change = on_change
        self._seen: dict[str, dict[str, Any]] = {}  # device -> last values the feed reported
        self._sub: Subscription | None = None

    def attach(self) -> None:
        """Start listening to the bus (events from now on are kept)."""
        self._sub = self.room.bus.subscribe()
        for device_id in self.room.runtimes:
            self._remember(device_id, self.room.device_snapshot(device_id))

    async def run(self) -> None:
        """Queue the bus's events until cancelled; `drain()` then queues what is left."""
        if self._sub is None:
            self.attach()
        await self.recover()
        while self._sub is not None:
            await self._take(await self._sub.queue.get())

    async def recover(self) -> int:
        """Queue the recent audit entries the outbox never got: made before the feed followed
        the bus (at start), or stored in the instant before a crash, when the bus event that
        would have queued them died with the process. An entry already queued is not again."""
        try:
            entries = await self.room.store.audit_unqueued(time.time() - self.outbox.max_age)
            for entry in entries:
                kind = "help" if entry.action == "help.request" else "audit"
                await self.outbox.event(kind, entry.as_dict())
        except Exception:
            log.exception("sync: could not queue the audit entries the hub missed")
            return 0
        if entries:
            log.warning("sync: %d audit entries the hub had not heard of queued", len(entries))
        return len(entries)

    async def drain(self) -> None:
        """Queue the events still waiting (at shutdown: nothing the room did is lost)."""
        sub, self._sub = self._sub, None
        if sub is None:
            return
        self.room.bus.unsubscribe(sub)
        while not sub.queue.empty():
            await self._take(sub.queue.get_nowait())

    async def _take(self, event: RoomEvent) -> None:
        if self._sub is not None and self._sub.lagged:
            self._sub.lagged = False
            log.warning("sync feed fell behind the room's bus; some changes were missed")
        self.on_change()
        try:
            await self._handle(event)
        except Exception:
            log.exception("sync: could not queue an event for the hub")

    async def _handle(self, event: RoomEvent) -> None:
        if event.kind == "audit":
            kind = "help" if event.data.get("action") == "help.request" else "audit"
            await self.outbox.event(kind, event.data)
        elif event.kind == "room" and "source" in event.data:
            await self.outbox.event("change", {"source": event.data["source"]})
        elif event.kind == "device":
            for kind, data in self._device_events(event.data):
                await self.outbox.event(kind, data)

    def _device_events(self, snap: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        device = str(snap.get("id"))
        before = self._seen.get(device)
        now = self._remember(device, snap)
        if before is None:
            before = {}
        out: list[tuple[str, dict[str, Any]]] = []
        # Coming online at start is no news; going offline after being online is an alert.
        if before.get("was_online") and before["online"] != now["online"]:
            code = "device.offline"
            out.append(
                (
                    "alert",
                    {
                        "code": code,
                        "active": not now["online"],
                        "device": device,
                        "reason": now["error"],
                    },
                )
            )
        if now["error"] and now["error"] != before.get("error"):
            out.append(
                (
                    "alert",
                    {
                        "code": "device.error",
                        "active": True,
                        "device": device,
                        "error": now["error"],
                    },
                )
            )
        for capability in CHANGES:
            if capability in now and now[capability] != before.get(capability):
                out.append(
                    (
                        "change",
                        {"device": device, "capability": capability, "value": now[capability]},
                    )
                )
        hours = now.get("lamp_hours")
        over = isinstance(hours, int | float) and hours >= self.lamp_hours_alert
        if over != before.get("lamp_over", False) and "lamp_hours" in now:
            out.append(
                (
                    "alert",
                    {
                        "code": "lamp.hours",
                        "active": over,
                        "device": device,
                        "hours": hours,
                        "threshold": self.lamp_hours_alert,
                    },
                )
            )
        return out

    def _remember(self, device: str, snap: dict[str, Any]) -> dict[str, Any]:
        reported = snap.get("reported", {})
        values: dict[str, Any] = {
            "online": bool(snap.get("online")),
            "error": (snap.get("health") or {}).get("last_error"),
        }
        for capability in (*CHANGES, "lamp_hours"):
            if capability in reported:
                values[capability] = reported[capability].get("value")
        values["was_online"] = values["online"] or self._seen.get(device, {}).get("was_online")
        hours = values.get("lamp_hours")
        values["lamp_over"] = isinstance(hours, int | float) and hours >= self.lamp_hours_alert
        self._seen[device] = values
        return values
