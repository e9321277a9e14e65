"""Hub commands signed with the hub's publisher key: a room with the key runs only those, and a
forged, altered, re-addressed or unsigned one is refused, changes nothing and does not use up its
id. A room without the key trusts the broker's ACL, as before. tests/hub/test_signed_commands.py
does the same through a real broker and a real hub."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tribune.hub.publisher import Publisher
from tribune.room import Room
from tribune.sync.commands import CommandRunner, parse_command
from tribune.sync.signing import command_message, load_public_key
from tribune.sync.topics import iso

ROOM = "baku/room-1"
HUB = Publisher(Ed25519PrivateKey.generate())
STRANGER = Publisher(Ed25519PrivateKey.generate())


def _body(cid: str = "c-1", scene: str = "class-start", room: str = ROOM) -> dict[str, Any]:
    deadline = iso(datetime.now(UTC) + timedelta(minutes=5))
    return {
        "id": cid,
        "action": "scene.activate",
        "args": {"scene": scene},
        "issued_by": "operator:ops",
        "deadline": deadline,
        "room": room,
    }


def _signed(body: dict[str, Any], signer: Publisher = HUB) -> dict[str, Any]:
    return {**body, "signature": signer.sign(command_message(body))}


def _payload(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _runner(room: Room, signer: Publisher | None = HUB) -> CommandRunner:
    key = None if signer is None else load_public_key(signer.public_pem().encode())
    return CommandRunner(room, hub_key=key)


def test_the_signed_bytes_are_canonical_and_leave_out_the_signature() -> None:
    body = _body()
    shuffled = dict(reversed(list(_signed(body).items())))
    assert command_message(shuffled) == command_message(body)
    assert command_message(body).startswith(b"tribune cmd v1\n{")
    # What the room reads back from the wire is what the hub signed.
    parsed = parse_command(_payload(_signed(body)), ROOM)
    assert parsed.message == command_message(body)
    assert parsed.signature == _signed(body)["signature"]


async def test_a_command_signed_by_the_hub_runs(room: Room) -> None:
    answer = await _runner(room).handle(_payload(_signed(_body())))
    assert answer["status"] == "done", answer
    assert room.desired["projector"]["power"] == "on"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "not signed"),
        ("stranger", "not the hub's"),
        ("altered args", "not the hub's"),
        ("altered issuer", "not the hub's"),
        ("later deadline", "not the hub's"),
        ("room taken out", "not the hub's"),
        ("garbage", "not the hub's"),
    ],
)
async def test_a_forged_or_altered_command_is_refused_and_changes_nothing(
    room: Room, case: str, reason: str
) -> None:
    body = _body()
    sent = _signed(body)
    if case == "unsigned":
        del sent["signature"]
    elif case == "stranger":
        sent = _signed(body, STRANGER)
    elif case == "altered args":
        sent["args"] = {"scene": "class-end"}
    elif case == "altered issuer":
        sent["issued_by"] = "operator:admin"
    elif case == "later deadline":
        sent["deadline"] = iso(datetime.now(UTC) + timedelta(days=6))
    elif case == "room taken out":
        del sent["room"]
    else:
        sent["signature"] = "bm90IGEgc2lnbmF0dXJl"
    desired = json.dumps(room.desired, sort_keys=True)
    recorded: list[None] = []
    runner = _runner(room)

    answer = await runner.handle(_payload(sent), lambda: recorded.append(None))

    assert answer["status"] == "failed", answer
    assert answer["id"] == "c-1"
    assert reason in answer["detail"], answer
    assert recorded == [None]  # acknowledged: the broker may forget it
    assert json.dumps(room.desired, sort_keys=True) == desired
    assert await room.store.audit_tail(5) == []
    # The id is not used up: the hub's own command of that id still runs.
    assert (await runner.handle(_payload(_signed(body))))["status"] == "done"


async def test_a_command_signed_for_another_room_is_refused(room: Room) -> None:
    other = _signed(_body(room="ganja/room-2"))
    answer = await _runner(room).handle(_payload(other))
    assert answer["status"] == "failed"
    assert "ganja/room-2" in answer["detail"]
    assert "projector" not in room.desired


async def test_a_room_whose_hub_key_could_not_be_read_runs_nothing(room: Room) -> None:
    runner = CommandRunner(room, signed_only=True)  # hub_key_file set, the key unreadable
    answer = await runner.handle(_payload(_signed(_body())))
    assert answer["status"] == "failed"
    assert "could not be read" in answer["detail"]
    assert "projector" not in room.desired


async def test_a_room_without_the_key_trusts_the_broker_as_before(room: Room) -> None:
    runner = _runner(room, signer=None)
    assert (await runner.handle(_payload(_body("c-1"))))["status"] == "done"
    assert (await runner.handle(_payload(_signed(_body("c-2", "class-end")))))["status"] == "done"
    assert room.desired["projector"]["power"] == "off"


async def test_a_signature_that_is_not_text_is_a_malformed_command(room: Room) -> None:
    answer = await _runner(room).handle(_payload({**_body(), "signature": 42}))
    assert answer["status"] == "failed"
    assert answer["detail"].startswith("malformed: signature")


async def test_a_forged_copy_of_a_command_that_ran_gets_its_stored_result(room: Room) -> None:
    runner = _runner(room)
    body = _body()
    done = await runner.handle(_payload(_signed(body)))
    assert done["status"] == "done"
    forged = {**body, "args": {"scene": "class-end"}}  # same id, unsigned, another scene
    answer = await runner.handle(_payload(forged))
    assert answer == done  # the hub's record of it is not overwritten with a `failed`
    assert room.desired["projector"]["power"] == "on"


async def test_nan_and_infinity_are_not_json(room: Room) -> None:
    text = json.dumps({**_body(), "args": {"scene": "class-start", "x": float("nan")}})
    assert "NaN" in text
    answer = await _runner(room).handle(text.encode())
    assert answer["status"] == "failed"
    assert "NaN is not a JSON number" in answer["detail"]
