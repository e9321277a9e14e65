"""Technician endpoints that change a device's profile in the running room (see docs/api.md).

- `GET /technician/devices`: the profile each device runs, what is installed, what can be undone.
- `POST /technician/devices/{id}/flash`: probe the device with a profile, install, hot-swap.
- `POST /technician/devices/{id}/rollback`: undo the device's last flash, hot-swap back.
- `GET /technician/profiles/{id}/history`: the store's installs and rollbacks of a profile.

Every one needs the technician token or a PIN session. The work is `ProfileFlasher`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from tribune.api.access import require_technician
from tribune.api.problems import PROBLEM_JSON, ApiProblem, problem_responses
from tribune.api.tokens import Principal
from tribune.errors import ConfigError
from tribune.profiles.flash import (
    FlashInProgressError,
    NothingToRollBackError,
    ProbeRefusedError,
    ProfileFlasher,
    Who,
)
from tribune.profiles.loader import MAX_PROFILE_BYTES

router = APIRouter(
    prefix="/api/v1/technician",
    responses=problem_responses(400, 401, 403, 404, 421, 422, 429),
)

Technician = Annotated[Principal, Depends(require_technician)]
DeviceId = Annotated[str, Path(description="a device name from the room config")]
ProfileId = Annotated[str, Path(description="a profile id, e.g. `epson-escvp21`")]


class FlashRequest(BaseModel):
    """A profile to put on a device."""

    model_config = ConfigDict(extra="forbid")

    profile: Annotated[str, Field(min_length=1, max_length=MAX_PROFILE_BYTES)] = Field(
        description="the profile file's YAML text"
    )
    filename: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="the file's name, for error messages (`FILE:LINE: field: reason`)"
    )
    force: StrictBool = Field(False, description="install even if the device does not match")
    timeout: Annotated[float, Field(gt=0, le=30)] | None = Field(
        None, description="seconds to wait for each probe reply (default: the profile's)"
    )
    sha256: Annotated[str, Field(pattern="^[0-9a-fA-F]{64}$")] | None = Field(
        None, description="refuse the file unless its SHA-256 is this"
    )
    by: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="the technician's name, for the history (the token is recorded too)"
    )


class RollbackRequest(BaseModel):
    """Who rolls back (optional)."""

    model_config = ConfigDict(extra="forbid")

    by: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="the technician's name, for the history (the token is recorded too)"
    )


class Open(BaseModel):
    """A response object that may carry more keys than it names."""

    model_config = ConfigDict(extra="allow")


class RunningProfile(Open):
    """A profile a device ran or runs."""

    profile: str
    version: str
    sha256: str | None
    origin: str | None = Field(description="installed | shipped | file")


class FlashDone(Open):
    """What a flash or rollback did: the device now runs `profile` `version`."""

    action: str = Field(description="flash | rollback")
    device: str
    profile: str
    version: str
    sha256: str
    origin: str | None = Field(description="installed | shipped | file")
    previous: RunningProfile
    installed: dict[str, Any] | None = Field(
        description="the store's new history record; null when the store did not change"
    )
    forced: bool
    probe: dict[str, Any] | None = Field(description="the probe report (flash only)")
    probe_error: str | None
    warnings: list[str] = Field(
        description="scene, source or desired values of this device the new profile refuses"
    )
    stale_devices: list[str] = Field(
        description="other devices that still run another version of this profile"
    )
    audit_id: int


class DeviceProfile(Open):
    """What one device runs, what the store holds for it and whether it can be rolled back."""

    device: str
    profile: str
    version: str
    sha256: str | None
    origin: str | None
    installed_sha256: str | None = Field(description="the installed file (null: shipped)")
    stale: bool = Field(description="the store holds another version than the running one")
    flashed: int = Field(description="flashes of this device a rollback can undo")
    can_roll_back: bool
    busy: str | None = Field(description="flashing / rolling back, while one runs")
    broken: str | None = Field(description="why the device is not running")


class HistoryRecord(Open):
    """One install or rollback of a profile."""

    id: str
    version: str
    sha256: str = Field(description='"shipped" when the override was removed')
    installed_at: float
    installed_by: str
    action: str = Field(description="install | rollback")
    previous_sha256: str | None
    source: str
    current: bool = Field(description="whether this version is the installed one")


class ProfileHistory(BaseModel):
    """A profile's installs and rollbacks, newest first."""

    profile: str
    entries: list[HistoryRecord]


def flasher_of(request: Request) -> ProfileFlasher:
    """The app's flasher (404 when the room has no profile store)."""
    flasher: ProfileFlasher | None = getattr(request.app.state, "flasher", None)
    if flasher is None:
        raise ApiProblem(
            404, "no-profile-store", "No profile store", "this service has no profile store"
        )
    return flasher


Flasher = Annotated[ProfileFlasher, Depends(flasher_of)]

CONFLICTS = problem_responses(409)


def _who(caller: Principal, name: str | None) -> Who:
    actor = caller.actor or caller.who
    return Who(caller.who, caller.actor, f"{name} ({actor})" if name else actor)


def _invalid(exc: ConfigError) -> ApiProblem:
    return ApiProblem(422, "invalid-profile", "Invalid profile", str(exc))


@router.get("/devices", response_model=list[DeviceProfile], summary="Device profiles (technician)")
async def device_profiles(caller: Technician, flasher: Flasher) -> list[dict[str, Any]]:
    """Every configured device: the profile it runs, the installed version, rollback or not."""
    return [state.to_json() for state in await flasher.devices()]


@router.post(
    "/devices/{device_id}/flash",
    response_model=FlashDone,
    responses=CONFLICTS,
    summary="Probe a device with a profile, install it and hot-swap (technician)",
)
async def flash_device(
    caller: Technician, flasher: Flasher, device_id: DeviceId, body: FlashRequest
) -> Any:
    """Pause the device, probe it with the profile, install it and restart the device on it.

    409 `probe-mismatch` (with `problems` and `probe`) when the device does not match and
    `force` is false; 409 `flash-in-progress`; 422 `invalid-profile` naming file, line and field.
    In each of those cases nothing changed.
    """
    try:
        outcome = await flasher.flash(
            device_id,
            body.profile,
            by=_who(caller, body.by),
            filename=body.filename,
            force=body.force,
            timeout=body.timeout,
            sha256=body.sha256,
        )
    except ConfigError as exc:
        raise _invalid(exc) from None
    except FlashInProgressError as exc:
        raise ApiProblem(409, "flash-in-progress", "Flash in progress", str(exc)) from None
    except ProbeRefusedError as exc:
        # RFC 9457 extension members: what did not match, and the whole probe report.
        problem: dict[str, Any] = {
            "type": "urn:tribune:problem:probe-mismatch",
            "title": "The device does not match the profile",
            "status": 409,
            "detail": str(exc),
            "problems": exc.problems,
            "probe": exc.report.to_json() if exc.report is not None else None,
        }
        return JSONResponse(problem, status_code=409, media_type=PROBLEM_JSON)
    return outcome.to_json()


@router.post(
    "/devices/{device_id}/rollback",
    response_model=FlashDone,
    responses=CONFLICTS,
    summary="Undo a device's last flash and hot-swap back (technician)",
)
async def rollback_device(
    caller: Technician,
    flasher: Flasher,
    device_id: DeviceId,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> Any:
    """Put back the profile the device ran before its last flash (no probe: the way back)."""
    name = body.by if body is not None else None
    try:
        outcome = await flasher.rollback(device_id, by=_who(caller, name))
    except FlashInProgressError as exc:
        raise ApiProblem(409, "flash-in-progress", "Flash in progress", str(exc)) from None
    except NothingToRollBackError as exc:
        raise ApiProblem(409, "nothing-to-roll-back", "Nothing to roll back", str(exc)) from None
    except ConfigError as exc:
        raise ApiProblem(409, "nothing-to-roll-back", "Cannot roll back", str(exc)) from None
    return outcome.to_json()


@router.get(
    "/profiles/{profile_id}/history",
    response_model=ProfileHistory,
    summary="A profile's installs and rollbacks (technician)",
)
async def profile_history(
    caller: Technician, flasher: Flasher, profile_id: ProfileId
) -> ProfileHistory:
    """Newest first; `current` marks the installed version (the shipped one when none is)."""
    try:
        entries = await flasher.history(profile_id)
    except ConfigError as exc:
        raise ApiProblem(422, "invalid-profile", "Unreadable history", str(exc)) from None
    return ProfileHistory(
        profile=profile_id,
        entries=[HistoryRecord(**e.record.to_json(), current=e.current) for e in entries],
    )
