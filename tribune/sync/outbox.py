"""The outbox: events and command results kept in SQLite until the broker acknowledged them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tribune.store import Store
from tribune.sync.topics import EVENTS, utc_now

log = logging.getLogger(__name__)


class Outbox:
    """Queues messages durably; the link drains them in order (`peek`, publish, `remove`)."""

    def __init__(self, store: Store, room_id: str, *, max_rows: int, max_age: float) -> None:
        self.store = store
        self.room_id = room_id
        self.max_rows = max_rows
        self.max_age = max_age
        self.dropped = 0  # since start; the store keeps the total in `sync.outbox.dropped`
        self.wakeup = asyncio.Event()

    async def event(self, kind: str, data: dict[str, Any]) -> int | None:
        """Queue an event for `events` with the room's next sequence number; returns it. An
        audit entry's word (its id and result) is queued once: None when it was already."""
        body = {"type": kind, "at": utc_now(), "room": self.room_id, "data": data}
        seq = await self._add(EVENTS, body, numbered=True, audit=_audit_key(kind, data))
        return seq

    async def message(self, suffix: str, payload: dict[str, Any]) -> None:
        """Queue an unnumbered message (a command result) for `{base}/{suffix}`."""
        await self._add(suffix, payload, numbered=False)

    async def _add(
        self,
        suffix: str,
        payload: dict[str, Any],
        *,
        numbered: bool,
        audit: tuple[int, str] | None = None,
    ) -> int | None:
        seq, dropped = await self.store.outbox_add(
            suffix,
            payload,
            numbered=numbered,
            max_rows=self.max_rows,
            max_age=self.max_age,
            audit=audit,
        )
        self.wakeup.set()
        if dropped:
            self.dropped += dropped
            log.warning(
                "sync outbox over its bounds (%d messages, %.0f h): dropped the %d oldest "
                "(%d since start)",
                self.max_rows,
                self.max_age / 3600,
                dropped,
                self.dropped,
            )
            if suffix == EVENTS and payload.get("type") != "alert":
                # The hub sees the gap in seq; this says why.
                await self.event(
                    "alert",
                    {"code": "outbox.dropped", "active": True, "dropped": dropped},
                )
        return seq


def _audit_key(kind: str, data: dict[str, Any]) -> tuple[int, str] | None:
    """(entry id, result) of an `audit` or `help` event's entry."""
    entry, result = data.get("id"), data.get("result")
    if kind in ("audit", "help") and isinstance(entry, int) and isinstance(result, str):
        return entry, result
    return None
