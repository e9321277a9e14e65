"""`POST /technician/devices/{id}/flash` and `/rollback` into a running room of simulators:
probe, install, hot-swap without a restart, refusals that change nothing, rollback."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import TOKENS, bearer, until
from tests.technician.flashing import EPSON, FlashRoom, epson_v2, flash_room, nec
from tribune.drivers.runtime import HealthStatus

FAST = 0.5  # seconds per probe reply: the NEC's 2 s would make a refusal take 4 s


@pytest.fixture
async def fr(tmp_path: Path) -> AsyncIterator[FlashRoom]:
    async with flash_room(tmp_path) as running:
        yield running


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_good_profile_is_used_at_once_without_a_restart(fr: FlashRoom) -> None:
    room, http = fr.room, fr.http
    answer = await http.patch(
        "/api/v1/room/desired", json={"projector": {"power": "on", "input": "hdmi1"}}
    )
    assert answer.status_code == 202
    await fr.converged()
    old = room.runtimes["projector"]
    switcher = room.runtimes["switcher"]
    switcher_since = switcher.health.since
    refused = await http.post("/api/v1/devices/projector/actions/freeze_now")
    assert refused.status_code == 404  # version 1 has no such command
    before = time.time()

    answer = await fr.flash("projector", epson_v2(), filename="epson-v2.yaml")

    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["profile"], done["version"], done["sha256"]) == (
        "epson-escvp21",
        "2",
        sha(epson_v2()),
    )
    assert done["previous"]["version"] == "1"
    assert done["previous"]["origin"] == "shipped"
    assert done["probe"]["matches"] is True
    assert done["probe"]["serial"]
    assert done["installed"]["installed_by"] == "token:technician"
    assert done["installed"]["source"] == "flash of projector (epson-v2.yaml)"
    assert done["warnings"] == []
    # Installed in the store, atomically, with who did it.
    assert fr.profiles.current_sha256("epson-escvp21") == sha(epson_v2())
    [entry] = fr.profiles.history("epson-escvp21")
    assert entry.current
    assert entry.record.installed_by == "token:technician"
    # The device runs a new runtime on the new profile; the switcher was never touched.
    new = room.runtimes["projector"]
    assert new is not old
    assert new.profile.version == "2"
    assert room.runtimes["switcher"] is switcher
    assert switcher.health.since == switcher_since
    assert switcher.health.status is HealthStatus.ONLINE
    snapshot = (await http.get("/api/v1/devices/projector")).json()
    assert snapshot["profile_version"] == "2"
    assert "freeze_now" in snapshot["actions"]
    assert snapshot["maintenance"] is None
    # The desired state is kept and reconciled; the state was read again.
    assert room.desired["projector"] == {"power": "on", "input": "hdmi1"}
    await fr.converged()
    await until(lambda: new.state["power"].at > before and "input" in new.state)
    assert new.state["power"].value == "on"
    # The next command is one only version 2 has.
    answer = await http.post("/api/v1/devices/projector/actions/freeze_now")
    assert answer.status_code == 200, answer.text
    assert fr.sims["projector"].state.freeze is True
    # Audited, with who; a restart builds the device on version 2 as well.
    audit = (await http.get("/api/v1/audit?limit=5")).json()["entries"]
    flash = next(e for e in audit if e["action"] == "profile.flash")
    assert (flash["who"], flash["actor"], flash["result"]) == ("api", "token:technician", "done")
    assert flash["detail"]["version"] == "2"
    assert fr.restarted().runtimes["projector"].profile.version == "2"


async def test_the_nec_profile_on_the_epson_is_refused_and_nothing_changes(
    fr: FlashRoom,
) -> None:
    room, http = fr.room, fr.http
    await http.patch("/api/v1/room/desired", json={"projector": {"power": "on"}})
    await fr.converged()
    old = room.runtimes["projector"]

    answer = await fr.flash("projector", nec(), filename="nec-projector.yaml", timeout=FAST)

    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["type"] == "urn:tribune:problem:probe-mismatch"
    assert problem["problems"][0].startswith("identify[0] send '00 85 00 00 01 04': no reply")
    assert problem["probe"]["matches"] is False
    # Nothing installed, no history, no flash recorded, the same runtime, back at work.
    assert fr.profiles.current_sha256("nec-projector") is None
    assert fr.profiles.history("nec-projector") == []
    assert fr.profiles.installed() == []
    assert room.flashes is not None
    assert room.flashes.stack("projector") == []
    assert room.runtimes["projector"] is old
    assert old.profile.id == "epson-escvp21"
    assert room.maintenance == {}
    assert fr.restarted().runtimes["projector"].profile.id == "epson-escvp21"
    answer = await http.patch("/api/v1/room/desired", json={"projector": {"input": "hdmi2"}})
    assert answer.status_code == 202
    await fr.converged()
    assert old.state["input"].value == "hdmi2"
    audit = (await http.get("/api/v1/audit?limit=5")).json()["entries"]
    refused = next(e for e in audit if e["action"] == "profile.flash")
    assert refused["result"].startswith("refused: identify[0]")


async def test_force_installs_a_mismatch_and_rollback_brings_the_old_profile_back(
    fr: FlashRoom,
) -> None:
    room, http = fr.room, fr.http
    await http.patch("/api/v1/room/desired", json={"projector": {"power": "on"}})
    await fr.converged()

    answer = await fr.flash("projector", nec(), force=True, timeout=FAST)

    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["forced"] is True
    assert done["probe"]["matches"] is False
    assert done["profile"] == "nec-projector"
    assert room.runtimes["projector"].profile.id == "nec-projector"
    assert fr.profiles.current_sha256("nec-projector") == sha(nec())
    # The NEC profile gets no answer from the Epson: that device is offline, the room runs on.
    await until(lambda: room.runtimes["projector"].health.status is HealthStatus.OFFLINE)
    assert room.runtimes["switcher"].health.status is HealthStatus.ONLINE
    assert (await http.get("/api/v1/room")).status_code == 200
    # A restart keeps the flashed profile on that device (room.toml still names the Epson one).
    assert fr.restarted().runtimes["projector"].profile.id == "nec-projector"
    audit = (await http.get("/api/v1/audit?limit=5")).json()["entries"]
    assert audit[0]["result"] == "done (forced: the probe did not match)"

    answer = await http.post("/api/v1/technician/devices/projector/rollback", json={"by": "rashad"})

    assert answer.status_code == 200, answer.text
    back = answer.json()
    assert (back["action"], back["profile"], back["version"]) == ("rollback", "epson-escvp21", "1")
    assert back["previous"]["profile"] == "nec-projector"
    assert room.runtimes["projector"].profile.id == "epson-escvp21"
    assert fr.profiles.current_sha256("nec-projector") is None
    rolled, installed = fr.profiles.history("nec-projector")
    assert (rolled.record.action, rolled.record.installed_by) == (
        "rollback",
        "rashad (token:technician)",
    )
    assert installed.record.action == "install"
    assert room.flashes is not None
    assert room.flashes.stack("projector") == []
    await fr.converged()
    assert fr.restarted().runtimes["projector"].profile.id == "epson-escvp21"


async def test_rollback_of_a_good_flash_and_the_history(fr: FlashRoom) -> None:
    room, http = fr.room, fr.http
    nothing = await http.post("/api/v1/technician/devices/projector/rollback")
    assert nothing.status_code == 409
    assert nothing.json()["type"] == "urn:tribune:problem:nothing-to-roll-back"
    assert (await fr.flash("projector", epson_v2())).status_code == 200
    devices = (await http.get("/api/v1/technician/devices")).json()
    projector = next(d for d in devices if d["device"] == "projector")
    assert projector["origin"] == "installed"
    assert projector["installed_sha256"] == projector["sha256"] == sha(epson_v2())
    assert projector["can_roll_back"] is True
    assert projector["stale"] is False

    answer = await http.post("/api/v1/technician/devices/projector/rollback")

    assert answer.status_code == 200, answer.text
    assert answer.json()["installed"]["sha256"] == "shipped"
    runtime = room.runtimes["projector"]
    assert runtime.profile.version == "1"
    assert "freeze_now" not in runtime.compiled.actions
    assert fr.profiles.current_sha256("epson-escvp21") is None
    history = (await http.get("/api/v1/technician/profiles/epson-escvp21/history")).json()
    assert [(e["action"], e["version"], e["current"]) for e in history["entries"]] == [
        ("rollback", "", True),
        ("install", "2", False),
    ]
    devices = (await http.get("/api/v1/technician/devices")).json()
    projector = next(d for d in devices if d["device"] == "projector")
    assert (projector["origin"], projector["can_roll_back"]) == ("shipped", False)
    await until(lambda: runtime.health.status is HealthStatus.ONLINE)


async def test_a_second_flash_of_the_same_device_meanwhile_is_a_conflict(fr: FlashRoom) -> None:
    http = fr.http
    await http.patch("/api/v1/room/desired", json={"projector": {"power": "on"}})
    await fr.converged()
    first = asyncio.create_task(fr.flash("projector", nec(), timeout=FAST))
    await until(lambda: "projector" in fr.room.maintenance)

    second = await fr.flash("projector", epson_v2())

    assert second.status_code == 409
    assert second.json()["type"] == "urn:tribune:problem:flash-in-progress"
    rollback = await http.post("/api/v1/technician/devices/projector/rollback")
    assert rollback.status_code == 409
    # Meanwhile: the device is shown in maintenance, its actions wait, intents are kept.
    snapshot = (await http.get("/api/v1/devices/projector")).json()
    assert snapshot["maintenance"] == "flashing nec-projector v1"
    busy = await http.post("/api/v1/devices/projector/actions/volume_up")
    assert busy.status_code == 502
    intent = await http.patch("/api/v1/room/desired", json={"projector": {"input": "hdmi2"}})
    assert intent.status_code == 202
    assert (await first).status_code == 409  # the NEC: refused by the probe
    assert fr.room.maintenance == {}
    await fr.converged()
    assert fr.room.runtimes["projector"].state["input"].value == "hdmi2"
    assert (await fr.flash("projector", epson_v2())).status_code == 200


async def test_a_device_that_could_not_start_is_brought_up_by_a_flash(tmp_path: Path) -> None:
    async with flash_room(tmp_path, projector_profile="epson-eb-x41") as fr:
        assert "no profile with id 'epson-eb-x41'" in fr.room.broken["projector"]
        assert fr.room.runtimes["switcher"].health.status is HealthStatus.ONLINE

        answer = await fr.flash("projector", EPSON.read_text(encoding="utf-8"))

        assert answer.status_code == 200, answer.text
        assert fr.room.broken == {}
        runtime = fr.room.runtimes["projector"]
        assert runtime.profile.id == "epson-escvp21"
        await until(lambda: runtime.health.status is HealthStatus.ONLINE)
        assert (await fr.http.get("/api/v1/room")).json()["broken"] == {}
        assert fr.restarted().runtimes["projector"].profile.id == "epson-escvp21"


async def test_an_invalid_profile_names_file_line_and_field(fr: FlashRoom) -> None:
    old = fr.room.runtimes["projector"]
    text = epson_v2().replace("reply: '', timeout: 100}", "reply: '', tiemout: 100}")
    line = 1 + text.split("tiemout")[0].count("\n")

    answer = await fr.flash("projector", text, filename="epson-v2.yaml")

    assert answer.status_code == 422
    problem = answer.json()
    assert problem["type"] == "urn:tribune:problem:invalid-profile"
    assert problem["detail"] == (
        f"epson-v2.yaml:{line}: capabilities.power.set.tiemout: unknown field "
        "(did you mean 'timeout'?)"
    )
    syntax = await fr.flash("projector", "id: epson-escvp21\nname: [unclosed\n", filename="x.yaml")
    assert syntax.status_code == 422
    assert syntax.json()["detail"].startswith("x.yaml:3: YAML syntax:")
    no_id = await fr.flash("projector", "name: nameless\n")
    assert no_id.json()["detail"] == "profile.yaml:1: id: required field is missing"
    assert fr.room.runtimes["projector"] is old
    assert fr.profiles.installed() == []
    unknown = await fr.flash("beamer", epson_v2())
    assert unknown.status_code == 404


async def test_flashing_needs_the_technician(fr: FlashRoom) -> None:
    body = {"profile": epson_v2()}
    path = "/api/v1/technician/devices/projector/flash"
    fr.http.headers.pop("Authorization")
    assert (await fr.http.post(path, json=body)).status_code == 401
    instructor = await fr.http.post(path, json=body, headers=bearer(TOKENS.api))
    assert instructor.status_code == 403
    history = await fr.http.get("/api/v1/technician/profiles/epson-escvp21/history")
    assert history.status_code == 401
    assert fr.profiles.installed() == []
