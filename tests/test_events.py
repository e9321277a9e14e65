"""The event bus: numbered events to subscribers, and a replay buffer of their WebSocket text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from tribune.events import EventBus


def test_the_replay_buffer_keeps_what_the_websocket_sends_and_forgets_the_oldest() -> None:
    bus = EventBus(history=3)
    sub = bus.subscribe()
    for i in range(5):
        bus.publish("device", {"id": "projector", "i": i})
    live = [sub.queue.get_nowait() for _ in range(5)]
    kept = bus.since(2)
    assert kept is not None
    assert [k.seq for k in kept] == [3, 4, 5]
    assert [k.text for k in kept] == [e.text for e in live[2:]]
    assert json.loads(kept[0].text) == {
        "type": "event", "seq": 3, "at": live[2].at, "kind": "device",
        "data": {"id": "projector", "i": 2},
    }  # fmt: skip
    assert bus.since(1) is None  # seq 2 is no longer kept: the client reloads
    assert bus.since(5) == []


def test_publishing_never_fails_on_a_value_json_cannot_write() -> None:
    bus = EventBus()
    event = bus.publish("audit", {"at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert json.loads(event.text)["data"]["at"] == "2026-01-01 00:00:00+00:00"
