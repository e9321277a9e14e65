"""What a compromised room can send the hub: whatever arrives on a room's topics is either
refused by `parse_message` (a ValueError the link logs and acknowledges) or stored; nothing else
escapes, since anything else would break the hub's link unacknowledged and have the broker send
the same message again on every reconnect: one room would cut the hub off from all of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tribune.hub import HubStore
from tribune.hub.subscriber import SUBSCRIPTIONS, parse_message

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
# Mostly plausible numbers; now and then one SQLite cannot store, or a bool.
ints = st.one_of(
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(max_value=-1),
    st.booleans(),
)
times = st.one_of(st.just("2026-11-26T08:00:00.000Z"), st.floats(), st.none(), json_values)


@st.composite
def room_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """A topic a room publishes on and a payload close enough to the contract to be stored."""
    site, room = draw(st.sampled_from([("baku", "room-1"), ("b a", "r+"), ("x", "é")]))
    suffix = draw(st.sampled_from([*SUBSCRIPTIONS, "cmd", "other/x"]))
    body: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    if suffix == "status":
        body["status"] = draw(st.sampled_from(["online", "offline"]) | json_values)
    elif suffix == "state":
        body["revision"] = draw(ints)
        body["snapshot"] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
        if draw(st.booleans()):
            body["snapshot"]["devices"] = draw(
                st.dictionaries(st.text(max_size=6), json_values, max_size=3)
            )
    elif suffix == "events":
        body["seq"] = draw(ints)
        body["type"] = draw(st.sampled_from(["alert", "help", "audit", "change"]) | json_values)
        body["data"] = draw(
            st.fixed_dictionaries(
                {}, optional=dict.fromkeys(("id", "at", "who", "actor", "code", "active"), times)
            )
            | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
        )
    elif suffix == "cmd/result":
        body["id"] = draw(st.text(max_size=10) | st.text(max_size=10) | json_values)
        body["status"] = draw(st.sampled_from(["done", "failed", "expired"]))
    if draw(st.booleans()):
        body["at"] = draw(times)
    for key in ("room", "detail"):
        if draw(st.booleans()):
            body[key] = draw(json_values)
    return f"tribune/v1/{site}/{room}/{suffix}", json.dumps(body).encode()


PAYLOADS = st.one_of(
    room_messages(),
    room_messages(),
    st.tuples(
        st.sampled_from([f"tribune/v1/baku/room-1/{s}" for s in SUBSCRIPTIONS]),
        st.binary(max_size=100)
        | st.sampled_from([b"[" * 5000, b'{"seq": ' + b"1" * 5000 + b"}", b"\xff"]),
    ),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HubStore]:
    hub = HubStore(tmp_path / "hub.db")
    await hub.open()
    yield hub
    await hub.close()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(message=PAYLOADS)
async def test_a_room_message_is_refused_or_stored_never_anything_else(
    store: HubStore, message: tuple[str, bytes]
) -> None:
    topic, payload = message
    try:
        incoming = parse_message(topic, payload, time.time())
    except ValueError:  # the link logs it and acknowledges it: it will not come again
        event("refused")
        return
    event(f"stored: {incoming.kind}")
    await store.take_in([incoming])
    # And what was stored can be read back by the API.
    await store.rooms()
    await store.room(incoming.room)
    await store.alerts("all")
    await store.help_requests("all")
