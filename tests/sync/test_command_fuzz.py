"""Hostile payloads on a room's `cmd` topic, fuzzed straight into `CommandRunner.handle` with a
real, started room: whatever arrives gets a `failed` result and changes nothing.

Anyone who can publish on `cmd` (the hub, or whoever holds the broker) sends these: bytes that
are not JSON, JSON of the wrong shape or types, huge payloads, commands for another room, ids
with MQTT wildcards, and well-formed commands whose arguments no room could carry out — those
signed with the hub's key, as a hub bug or a stolen operator token would send them, so they get
past the signature to the checks of the arguments. After each: the desired state is as before,
nothing ran (no schedule set, no profile flashed), every new audit entry is a refusal, and the
message was acknowledged once so the broker may forget it.
tests/sync/test_commands.py sends a fixed list of the same through a real broker.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.strategies import json_values as any_json
from tribune.hub.publisher import Publisher
from tribune.room import Room
from tribune.scheduler import ScheduleEntry
from tribune.sync.commands import ACTIONS, COMMAND_ID, ISSUER, MAX_PAYLOAD, CommandRunner
from tribune.sync.signing import command_message, load_public_key
from tribune.sync.topics import iso

ROOM = "baku/room-1"
HUB = Publisher(Ed25519PrivateKey.generate())  # the room below has its public key
DEVICES = ("projector", "board", "switcher")
SCENES = ("class-start", "class-end")

json_values: st.SearchStrategy[Any] = any_json(text=12, keys=8, items=4, leaves=10)
not_text = json_values.filter(lambda v: not isinstance(v, str))


def _deadline(minutes: float = 10) -> str:
    return iso(datetime.now(UTC) + timedelta(minutes=minutes))


def _command(cid: str, action: str, args: Any, **extra: Any) -> dict[str, Any]:
    body = {"id": cid, "action": action, "args": args, "issued_by": "operator:fuzz"}
    return {**body, "deadline": _deadline(), **extra}


def _signed(body: dict[str, Any]) -> bytes:
    """`body` as the hub sends it: signed with its publisher key."""
    return json.dumps({**body, "signature": HUB.sign(command_message(body))}).encode()


def _not_a_deadline(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return True
    return parsed.utcoffset() is None


# One field of a good command replaced by a value that field refuses.
BROKEN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(
        not_text,
        st.sampled_from(["", "a+b", "+", "#", "room/#", "a/b", "-x", "x" * 129, "é", "a b"]),
        st.text(max_size=20).filter(lambda s: not COMMAND_ID.match(s)),
    ),
    "action": st.one_of(not_text, st.text(max_size=20).filter(lambda s: s not in ACTIONS)),
    "args": st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.lists(json_values)),
    "issued_by": st.one_of(
        not_text,
        st.sampled_from(["", "x" * 129, "op\x00", "op\nerator", "\x1b[31m"]),
        st.text(max_size=20).filter(lambda s: not ISSUER.match(s)),
    ),
    "deadline": json_values.filter(_not_a_deadline)
    | st.sampled_from(["tomorrow", "2099-01-01T00:00:00", "2099-13-01T00:00:00Z", ""]),
    "room": json_values.filter(lambda v: v != ROOM) | st.sampled_from(["ganja/room-2", "#", "+/+"]),
}


@st.composite
def broken_envelopes(draw: st.DrawFn) -> bytes:
    """A command to activate a real scene, one field of which is wrong (or one key too many)."""
    cid = draw(st.from_regex(COMMAND_ID, fullmatch=True))
    body = _command(cid, "scene.activate", {"scene": draw(st.sampled_from(SCENES))})
    field = draw(st.sampled_from([*BROKEN_FIELDS, "extra"]))
    if field == "extra":
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in body))
        body[key] = draw(json_values)
    else:
        body[field] = draw(BROKEN_FIELDS[field])
    return json.dumps(body).encode()


def _not_in(names: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return json_values.filter(lambda v: v not in names)


@st.composite
def hostile_arguments(draw: st.DrawFn) -> bytes:
    """A well-formed command for this room whose arguments no room could carry out."""
    cid = draw(st.from_regex(COMMAND_ID, fullmatch=True))
    action = draw(st.sampled_from(ACTIONS))
    if action == "scene.activate":
        args: Any = draw(st.fixed_dictionaries({"scene": _not_in(SCENES)}) | st.just({}))
    elif action == "desired.patch":
        device_caps = st.dictionaries(
            st.text(max_size=10).map(lambda name: "no_such_" + name),  # no profile has these
            json_values,
            min_size=1,
            max_size=3,
        )
        desired = st.one_of(
            not_text.filter(lambda v: not isinstance(v, dict)),
            st.dictionaries(
                st.text(max_size=10).filter(lambda name: name not in DEVICES),
                json_values,
                min_size=1,
                max_size=3,
            ),
            st.dictionaries(st.sampled_from(DEVICES), device_caps, min_size=1, max_size=3),
            st.dictionaries(
                st.sampled_from(DEVICES),
                not_text.filter(lambda v: not isinstance(v, dict)),
                min_size=1,
                max_size=3,
            ),
        )
        args = {"desired": draw(desired)}
    elif action == "device.action":
        args = draw(
            st.fixed_dictionaries(
                {"device": _not_in(DEVICES), "action": json_values},
                optional={"params": json_values},
            )
            | st.fixed_dictionaries(
                {"device": st.sampled_from(DEVICES), "action": st.text(max_size=8) | not_text},
                optional={"params": json_values.filter(lambda v: not isinstance(v, dict))},
            )
        )
        if args.get("device") in DEVICES and isinstance(args.get("action"), str):
            args["action"] = "no-such-" + args["action"]
    elif action == "schedule.set":
        entries = st.lists(
            st.dictionaries(st.sampled_from(["id", "when", "scene", "x"]), json_values),
            min_size=1,
            max_size=3,
        )
        args = {"entries": draw(not_text.filter(lambda v: not isinstance(v, list)) | entries)}
    else:  # profile.push, its profile never signed with the hub's key
        args = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "profile": st.text(max_size=40) | not_text,
                    "sha256": st.text("0123456789abcdef", min_size=64, max_size=64) | not_text,
                    "signature": st.text(max_size=90) | not_text,
                    "device": json_values,
                    "force": json_values,
                },
            )
        )
    body = _command(cid, action, args)
    if draw(st.booleans()):
        body["room"] = ROOM  # naming this room is allowed
    return _signed(body)


def _huge(size: int) -> bytes:
    body = _command("huge-1", "scene.activate", {"scene": "class-start"}, pad="x" * size)
    return json.dumps(body).encode()


def _deep(levels: int) -> bytes:
    """A good command but for its args: lists `levels` deep (json.loads gives up near 1000)."""
    args = '{"scene": ' + "[" * levels + "]" * levels + "}"
    text = json.dumps(_command("deep-1", "scene.activate", {})).replace("{}", args)
    return text.encode()


PAYLOADS = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    broken_envelopes(),
    hostile_arguments(),
    hostile_arguments(),
    st.integers(MAX_PAYLOAD, MAX_PAYLOAD + 4096).map(_huge),
    st.sampled_from([b"", b"null", b"{}", b"\xff\xfe{", b'{"id": "a"}', b"[" * 10_000]),
    st.integers(30, 3000).map(_deep),
)


class Untouchable:
    """A schedule handler and a flasher that fail the test if anything reaches them."""

    async def __call__(self, entries: list[ScheduleEntry]) -> None:
        raise AssertionError(f"a hostile schedule.set was applied: {entries}")

    async def flash(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hostile profile.push reached the flasher")


@pytest.fixture
def runner(room: Room) -> CommandRunner:
    """With the hub's real key: unsigned commands are refused, signed ones checked further."""
    hub_key = load_public_key(HUB.public_pem().encode())
    untouchable = Untouchable()
    return CommandRunner(room, schedule=untouchable, flasher=untouchable, hub_key=hub_key)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=PAYLOADS)
async def test_a_hostile_cmd_payload_fails_and_changes_nothing(
    room: Room, runner: CommandRunner, payload: bytes
) -> None:
    desired = json.dumps(room.desired, sort_keys=True)
    tail = await room.store.audit_tail(1)
    last_id = tail[0].id if tail else 0
    recorded: list[None] = []

    answer = await runner.handle(payload, lambda: recorded.append(None))

    assert answer["status"] == "failed", answer
    assert answer["detail"]
    event("malformed" if str(answer["detail"]).startswith("malformed") else "refused by the room")
    assert answer["id"] is None or isinstance(answer["id"], str)
    json.dumps(answer)  # what goes back on cmd/result
    assert len(recorded) == 1
    assert json.dumps(room.desired, sort_keys=True) == desired
    new = [e for e in await room.store.audit_tail(50) if e.id > last_id]
    for entry in new:
        assert entry.result.startswith(("refused", "failed")), entry


async def test_the_room_still_runs_a_good_command_afterwards(
    room: Room, runner: CommandRunner
) -> None:
    for payload in (b"{", _huge(MAX_PAYLOAD), b'{"id": "x#"}'):
        assert (await runner.handle(payload))["status"] == "failed"
    good = _command("good-1", "desired.patch", {"desired": {"projector": {"power": "on"}}})
    assert (await runner.handle(json.dumps(good).encode()))["status"] == "failed"  # unsigned
    answer = await runner.handle(_signed(good))
    assert answer["status"] == "done", answer
    assert room.desired["projector"]["power"] == "on"
