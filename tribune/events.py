"""The in-process event bus: room changes with a sequence number, and a replay buffer.

A WebSocket client that reconnects says the last sequence number it saw; `since(seq)` gives
everything after it, or None when the buffer no longer reaches back that far (the client then
reloads the whole room state). The buffer keeps each event as the text the WebSocket sends: a
device snapshot as JSON takes a fraction of the memory of its dicts, and it is made once for
every client instead of once per client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One change: `kind` is "device", "room" or "audit"; `data` is JSON-ready."""

    seq: int
    at: float
    kind: str
    data: dict[str, Any]
    text: str  # the WebSocket message (`{"type": "event", ...}`), made once at publish

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "data": self.data}


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """An event as the replay buffer keeps it: its number and its WebSocket text."""

    seq: int
    text: str


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue; `lagged` is set when it fell behind and lost events."""

    queue: asyncio.Queue[RoomEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    lagged: bool = False

    async def __aiter__(self) -> AsyncIterator[RoomEvent]:  # pragma: no cover - typing aid
        while True:
            yield await self.queue.get()


REPLAY_EVENTS = 2000  # kept for replay; a service's memory grows until they are (bench/soak.py)


class EventBus:
    """Publishes room events to subscribers and keeps the last `history` for replay."""

    def __init__(self, history: int = REPLAY_EVENTS) -> None:
        self.seq = 0
        self._history: deque[KeptEvent] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()

    def publish(self, kind: str, data: dict[str, Any]) -> RoomEvent:
        """Number and deliver an event."""
        self.seq += 1
        at = time.time()
        message = {"type": "event", "seq": self.seq, "at": at, "kind": kind, "data": data}
        # `default=str`: whatever a publisher put in, publishing never fails for its text.
        text = json.dumps(message, ensure_ascii=False, default=str)
        event = RoomEvent(self.seq, at, kind, data, text)
        self._history.append(KeptEvent(event.seq, event.text))
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.lagged = True  # the client resumes from its last seq or reloads
        return event

    def since(self, seq: int) -> list[KeptEvent] | None:
        """Events after `seq`, or None if some of them are no longer kept."""
        if seq >= self.seq:
            return []
        if not self._history or self._history[0].seq > seq + 1:
            return None
        return [event for event in self._history if event.seq > seq]

    def subscribe(self) -> Subscription:
        """A new subscription; call `unsubscribe` when done."""
        sub = Subscription()
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub`."""
        self._subscribers.discard(sub)
