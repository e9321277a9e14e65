"""Endpoints the touch panel needs beyond the room's: its controls, help, technician access, logs.

- `GET /panel`: which device the volume, mute, blank and freeze controls drive (from the
  config's `[panel]`, or derived from the profiles), and each device's warm-up/cool-down.
- `POST /help`: an instructor calls a technician; audited (and sent on to the hub by sync).
- `POST /technician/session`: the technician PIN for a short-lived technician token;
  wrong PINs are counted and locked out, every try is audited.
- `GET /logs`, `GET /profiles` (technician): the service log tail and the installed profiles.
"""

from __future__ import annotations

import asyncio
import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from tribune.api.access import principal_of, require_technician
from tribune.api.logring import LogRing
from tribune.api.pin import verify_pin
from tribune.api.problems import ApiProblem, problem_responses
from tribune.api.technician import MAX_FAILURES, TechnicianSessions
from tribune.api.tokens import Principal
from tribune.errors import ConfigError
from tribune.profiles.loader import ProfileLoader
from tribune.room import Room

router = APIRouter(prefix="/api/v1", responses=problem_responses(400, 401, 403, 421, 422, 429))

Caller = Annotated[Principal, Depends(principal_of)]
Technician = Annotated[Principal, Depends(require_technician)]

VOLUME_KINDS = ("switcher", "display", "board", "projector")
BLANK_KINDS = ("projector", "display")
FREEZE_KINDS = ("projector", "board", "display")


class Timing(BaseModel):
    """How long a device takes to warm up and cool down, in seconds (its profile's figures)."""

    warmup: float
    cooldown: float


class PanelControls(BaseModel):
    """What the panel's controls act on; `null` or `[]` hides a control."""

    volume: str | None = Field(description="the device whose `volume` the slider sets")
    mute: str | None = Field(description="the device whose `mute` the mute button sets")
    blank: list[str] = Field(description="devices whose `video_mute` the blank button sets")
    freeze: list[str] = Field(description="devices whose `freeze` the freeze button sets")
    technician_pin: bool = Field(description="whether a technician PIN is configured")
    language: str = Field(description="the room's default panel language (az, en, ru)")
    timing: dict[str, Timing]


class HelpRequest(BaseModel):
    """An optional note with the call."""

    note: Annotated[str, Field(max_length=500)] = ""


class HelpSent(BaseModel):
    """The help request is recorded."""

    audit_id: int
    at: float


class PinExchange(BaseModel):
    """The technician PIN."""

    pin: Annotated[str, Field(min_length=1, max_length=32)]


class TechnicianSession(BaseModel):
    """A technician bearer token for the panel, valid `expires_in` seconds."""

    token: str
    expires_in: float


class LogTail(BaseModel):
    """The service's recent log records, oldest first."""

    records: list[dict[str, Any]]


class InstalledProfile(BaseModel):
    """A device profile the service can load, and which configured devices use it."""

    id: str
    name: str
    kind: str
    vendor: str
    version: str
    models: list[str]
    path: str
    devices: list[str]


def _room(request: Request) -> Room:
    room: Room = request.app.state.room
    return room


def _sessions(request: Request) -> TechnicianSessions:
    sessions: TechnicianSessions = request.app.state.technician_sessions
    return sessions


def panel_controls(room: Room) -> PanelControls:
    """The `[panel]` section, with what it leaves out derived from the devices' capabilities."""
    section = room.config.panel

    def settable(device_id: str, capability: str) -> bool:
        runtime = room.runtimes.get(device_id)
        if runtime is None:
            return False
        cap = runtime.compiled.capabilities.get(capability)
        return cap is not None and cap.settable

    def kind(device_id: str) -> str:
        return str(room.runtimes[device_id].profile.kind)

    devices = [d for d in room.config.devices if d in room.runtimes]

    def first_with(capability: str) -> str | None:
        for wanted in VOLUME_KINDS:
            for device_id in devices:
                if kind(device_id) == wanted and settable(device_id, capability):
                    return device_id
        return None

    volume = section.volume if section.volume is not None else first_with("volume")
    if section.mute is not None:
        mute: str | None = section.mute
    elif volume is not None and settable(volume, "mute"):
        mute = volume
    else:
        mute = first_with("mute")
    blank = section.blank
    if blank is None:
        blank = [d for d in devices if kind(d) in BLANK_KINDS and settable(d, "video_mute")]
    freeze = section.freeze
    if freeze is None:
        freeze = [d for d in devices if kind(d) in FREEZE_KINDS and settable(d, "freeze")]
    timing = {
        device_id: Timing(
            warmup=runtime.profile.timing.warmup, cooldown=runtime.profile.timing.cooldown
        )
        for device_id, runtime in room.runtimes.items()
    }
    return PanelControls(
        volume=volume,
        mute=mute,
        blank=list(blank),
        freeze=list(freeze),
        technician_pin=section.technician_pin is not None,
        language=room.config.room.language,
        timing=timing,
    )


@router.get("/panel", response_model=PanelControls, summary="The touch panel's controls")
async def get_panel(request: Request, caller: Caller) -> PanelControls:
    """Which devices the volume, mute, blank and freeze controls act on; devices' timing."""
    return panel_controls(_room(request))


@router.post("/help", response_model=HelpSent, summary="Call a technician")
async def call_help(
    request: Request,
    caller: Caller,
    body: Annotated[HelpRequest | None, Body()] = None,
) -> HelpSent:
    """Record a help request from the room (audited as `help.request`)."""
    room = _room(request)
    detail: dict[str, Any] = {"room": room.id, "source": room.source}
    if body is not None and body.note:
        detail["note"] = body.note
    entry = await room.store.audit(caller.who, caller.actor, "help.request", detail, "sent")
    room.bus.publish("audit", entry.as_dict())
    return HelpSent(audit_id=entry.id, at=entry.at)


@router.post(
    "/technician/session",
    response_model=TechnicianSession,
    responses=problem_responses(404, 429),
    summary="Exchange the technician PIN for a short-lived technician token",
)
async def open_technician_session(
    request: Request, response: Response, caller: Caller, body: PinExchange
) -> TechnicianSession:
    """The right PIN gives a token for `Authorization: Bearer`; wrong ones are rate-limited."""
    room = _room(request)
    sessions = _sessions(request)
    hashed = room.config.panel.technician_pin
    if hashed is None:
        raise ApiProblem(
            404, "no-pin", "No technician PIN", "this room has no technician PIN configured"
        )
    wait = sessions.retry_after()
    if wait > 0:
        await _audit(room, caller, "technician.session", "refused: too many wrong PINs")
        raise ApiProblem(
            429,
            "too-many-attempts",
            "Too many wrong PINs",
            f"too many wrong PINs: try again in {math.ceil(wait)} s",
            {"Retry-After": str(math.ceil(wait))},
        )
    # PBKDF2 takes a tenth of a second: off the event loop.
    if not await asyncio.to_thread(verify_pin, body.pin, hashed):
        left = sessions.failed()
        await _audit(room, caller, "technician.session", "failed: wrong PIN")
        raise ApiProblem(
            401,
            "wrong-pin",
            "Wrong PIN",
            f"wrong PIN ({left} of {MAX_FAILURES} tries left)",
        )
    token, ttl = sessions.open()
    await _audit(room, caller, "technician.session", "done")
    response.headers["Cache-Control"] = "no-store"
    return TechnicianSession(token=token, expires_in=ttl)


@router.delete(
    "/technician/session", status_code=204, summary="End the technician session (technician)"
)
async def close_technician_session(request: Request, caller: Technician) -> Response:
    """Forget the presented session token (a no-op for the technician API token)."""
    authorization = request.headers.get("authorization", "")
    _sessions(request).close(authorization.partition(" ")[2].strip())
    return Response(status_code=204)


@router.get("/logs", response_model=LogTail, summary="The service log tail (technician)")
async def read_logs(
    caller: Technician,
    limit: Annotated[int, Query(ge=1, le=1000, description="records, newest last")] = 200,
) -> LogTail:
    """The last log records this service process wrote."""
    return LogTail(records=LogRing.installed().tail(limit))


@router.get(
    "/profiles",
    response_model=list[InstalledProfile],
    summary="Installed device profiles (technician)",
)
async def list_profiles(request: Request, caller: Technician) -> list[InstalledProfile]:
    """Every profile the service can load, with the devices of this room that use it."""
    room = _room(request)
    used: dict[str, list[str]] = {}
    for device_id, runtime in room.runtimes.items():
        used.setdefault(runtime.profile.id, []).append(device_id)
    loaded = await asyncio.to_thread(_load_profiles, room.loader)
    return [
        InstalledProfile(
            id=p.id,
            name=p.name,
            kind=str(p.kind),
            vendor=p.vendor,
            version=p.version,
            models=list(p.models),
            path=path,
            devices=used.get(p.id, []),
        )
        for path, p in loaded
    ]


def _load_profiles(loader: ProfileLoader) -> list[tuple[str, Any]]:
    found = []
    seen: set[str] = set()
    for path in loader.paths():  # installed first: an installed profile hides the shipped one
        if path.stem in seen:
            continue
        seen.add(path.stem)
        try:
            found.append((f"{path.parent.name}/{path.name}", loader.load_file(path).profile))
        except ConfigError:  # a broken file is `tribune profile validate`'s to report
            continue
    return sorted(found, key=lambda item: (str(item[1].kind), item[1].id))


async def _audit(room: Room, caller: Principal, action: str, result: str) -> None:
    entry = await room.store.audit(caller.who, caller.actor, action, {"room": room.id}, result)
    room.bus.publish("audit", entry.as_dict())
