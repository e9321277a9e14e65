"""`/api/v1/ws`: the room's events, numbered, so a client can resume without missing one.

On connect the client gets what it missed since `?since=SEQ` (when the bus still holds it, and
`?epoch=` — if given — is this run's), or else a whole `snapshot` first; then every event. A
client that falls too far behind gets a fresh snapshot instead of a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from tribune.events import KeptEvent, Subscription
from tribune.room import Room

log = logging.getLogger(__name__)


async def stream_room(
    websocket: WebSocket, room: Room, *, epoch: str, since: int | None, their_epoch: str | None
) -> None:
    """Serve one WebSocket client until it leaves."""
    await websocket.accept()
    # Subscribe before looking at the backlog, in the same tick: nothing can fall in between.
    subscription = room.bus.subscribe()
    try:
        backlog = None
        # Resuming needs the epoch too: numbers from another run of the service mean nothing.
        if since is not None and since <= room.bus.seq and their_epoch == epoch:
            backlog = room.bus.since(since)
        writer = asyncio.create_task(
            _write(websocket, room, subscription, backlog, since or 0, epoch)
        )
        reader = asyncio.create_task(_read_until_closed(websocket))
        done, pending = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                task.result()
    finally:
        room.bus.unsubscribe(subscription)


async def _write(
    websocket: WebSocket,
    room: Room,
    subscription: Subscription,
    backlog: list[KeptEvent] | None,
    last: int,
    epoch: str,
) -> None:
    if backlog is None:
        last = await _send_snapshot(websocket, room, epoch)
    else:
        for kept in backlog:
            await websocket.send_text(kept.text)
            last = kept.seq
    while True:
        event = await subscription.queue.get()
        if subscription.lagged:
            # The queue overflowed and events were dropped: start this client over.
            subscription.lagged = False
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            last = await _send_snapshot(websocket, room, epoch)
            continue
        if event.seq <= last:
            continue
        await websocket.send_text(event.text)
        last = event.seq


async def _send_snapshot(websocket: WebSocket, room: Room, epoch: str) -> int:
    seq = room.bus.seq
    message: dict[str, Any] = {"type": "snapshot", "seq": seq, "epoch": epoch}
    message["room"] = room.snapshot()
    await websocket.send_text(json.dumps(message, ensure_ascii=False))
    return seq


async def _read_until_closed(websocket: WebSocket) -> None:
    """Messages from the client mean nothing yet; this notices when it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
