"""Without a broker: the `[sync]` section, command parsing, the outbox's bounds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tribune.config import parse_config
from tribune.errors import ConfigError
from tribune.store import Store
from tribune.sync.commands import MalformedCommandError, parse_command
from tribune.sync.outbox import Outbox

BASE = """
[room]
id = "baku/room-1"
name = "Room"

[devices]
"""


def test_configs_without_sync_or_with_an_empty_table_stay_valid() -> None:
    assert parse_config(BASE, "room.toml").sync is None
    assert parse_config(BASE + "\n[sync]\n", "room.toml").sync is None


def test_a_sync_section_is_validated() -> None:
    config = parse_config(
        BASE + '[sync]\nbroker = "mqtts://hub.example.az"\nusername = "baku-room-1"\n'
        'password_file = "mqtt.pw"\nca_file = "ca.pem"\n',
        "room.toml",
    )
    assert config.sync is not None
    assert (config.sync.host, config.sync.port, config.sync.tls) == ("hub.example.az", 8883, True)
    plain = parse_config(BASE + '[sync]\nbroker = "mqtt://10.0.0.5"\n', "room.toml").sync
    assert plain is not None
    assert plain.port == 1883


@pytest.mark.parametrize(
    ("sync", "message"),
    [
        ('broker = "http://hub"', "mqtts://host:8883"),
        ('broker = "mqtt://hub/path"', "scheme://host"),
        ('broker = "mqtt://hub"\npassword_file = "x"', "needs sync.username"),
        ('broker = "mqtts://hub"\ncert_file = "c.pem"', "together"),
        ('broker = "mqtt://hub"\nca_file = "ca.pem"', "mqtts://"),
        ('broker = "mqtt://hub"\nkeepalive = 1', "keepalive"),
        ('broker = "mqtt://hub"\npasword = "x"', "unknown key"),
    ],
)
def test_bad_sync_sections_name_the_problem(sync: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(BASE + "[sync]\n" + sync + "\n", "room.toml")
    assert message in str(info.value)
    assert "room.toml:" in str(info.value)


GOOD = {
    "id": "c-1",
    "action": "scene.activate",
    "args": {"scene": "class-start"},
    "issued_by": "operator",
    "deadline": "2099-01-01T00:00:00Z",
}


@pytest.mark.parametrize("bad_id", ["a+b", "a#", "a/b", "", "x" * 129, " spaced", "+", "#"])
def test_command_ids_with_wildcards_or_slashes_are_refused(bad_id: str) -> None:
    with pytest.raises(MalformedCommandError, match="id:"):
        parse_command(json.dumps({**GOOD, "id": bad_id}).encode(), "baku/room-1")


def test_a_good_command_parses_with_a_utc_deadline() -> None:
    cmd = parse_command(json.dumps(GOOD).encode(), "baku/room-1")
    assert (cmd.id, cmd.action, cmd.issued_by) == ("c-1", "scene.activate", "operator")
    assert cmd.deadline.utcoffset() is not None
    with pytest.raises(MalformedCommandError, match="zone"):
        parse_command(json.dumps({**GOOD, "deadline": "2099-01-01T00:00:00"}).encode(), "b/r")


async def test_the_outbox_drops_the_oldest_beyond_its_bound_and_counts_them(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "t.db")
    await store.open()
    try:
        outbox = Outbox(store, "baku/room-1", max_rows=10, max_age=3600)
        for i in range(15):
            await outbox.event("audit", {"i": i})
        rows = await store.outbox_peek(100)
        assert len(rows) == 10
        payloads = [json.loads(p) for _, _, p in rows]
        assert payloads[-1]["type"] == "alert"  # why the hub sees a gap
        assert payloads[-1]["data"]["code"] == "outbox.dropped"
        seqs = [p["seq"] for p in payloads]
        assert seqs == sorted(seqs)
        assert outbox.dropped >= 5
        assert (await store.counters())["sync.outbox.dropped"] == outbox.dropped
    finally:
        await store.close()


async def test_the_outbox_drops_messages_older_than_its_age_bound(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    await store.open()
    try:
        outbox = Outbox(store, "baku/room-1", max_rows=100, max_age=0.2)
        await outbox.event("audit", {"i": 1})
        await asyncio.sleep(0.3)
        await outbox.event("audit", {"i": 2})
        payloads = [json.loads(p) for _, _, p in await store.outbox_peek(100)]
        assert [p["data"].get("i") for p in payloads if p["type"] == "audit"] == [2]
    finally:
        await store.close()
