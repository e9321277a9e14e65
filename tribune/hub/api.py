"""`create_hub_app`: the hub's REST API under `/api/v1` and the fleet page at `/`.

Every API call but the OpenAPI document needs an operator's bearer token; the role decides what
it may do: `viewer` reads, `operator` also sends commands and acknowledges alerts and help
requests, `admin` also manages operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tribune import __version__
from tribune.api.attempts import FailedAttempts
from tribune.api.problems import (
    ApiProblem,
    install_problem_handlers,
    problem_responses,
)
from tribune.hub.auth import NAME_PATTERN, create_operator, token_hash
from tribune.hub.store import ROLES, Operator
from tribune.hub.subscriber import HubSubscriber
from tribune.sync.commands import ACTIONS, MAX_PAYLOAD

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ROOM_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}/[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_TTL = 7 * 24 * 3600  # the broker keeps a room's queued commands as long as its session
MAX_ROOMS = 10_000
FLEET_PAGE = FsPath(__file__).parent / "fleet"

DESCRIPTION = """\
The fleet: every room's status, last seen, devices and recent events; alerts and help requests;
commands to one room or many with a per-room status (`queued | delivered | done | failed |
expired`).

Every call needs `Authorization: Bearer <token>` (an operator's token, from
`tribune hub token create`). Roles: `viewer` reads; `operator` also sends commands and
acknowledges alerts and help requests; `admin` also manages operators. After 10 unknown tokens
in 5 minutes a client address gets 429 with `Retry-After` until the window passes. Errors are
`application/problem+json`.
"""

Site = Annotated[str, Path(pattern=NAME, description="the centre, e.g. `baku`")]
RoomName = Annotated[str, Path(pattern=NAME, description="the room, e.g. `room-1`")]
RowId = Annotated[int, Path(ge=1, lt=2**63, description="an id from a listing")]  # SQLite's
SiteFilter = Annotated[str | None, Query(pattern=NAME, description="only this centre")]


class Thresholds(BaseModel):
    """Hours past which the fleet page marks a lamp or a filter as due."""

    lamp_hours: int = 3000
    filter_hours: int = 2000


class CommandRequest(BaseModel):
    """A command for a room."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description=f"one of {', '.join(ACTIONS)}", examples=["scene.activate"])
    args: dict[str, Any] = Field(default_factory=dict, examples=[{"scene": "class-start"}])
    ttl_s: float = Field(
        default=300, gt=0, le=MAX_TTL, description="seconds until the room must refuse it"
    )


class Selector(BaseModel):
    """Which rooms: exactly one of `site`, `rooms`, `model` or `all`."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, pattern=NAME, description="every room of a centre")
    rooms: list[Annotated[str, Field(pattern=ROOM_ID)]] | None = Field(
        default=None, min_length=1, max_length=MAX_ROOMS, description="`site/room` ids"
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="every room with a device that reports this model (its last state)",
    )
    all: bool = Field(default=False, description="every room the hub has seen")

    @model_validator(mode="after")
    def _one(self) -> Selector:
        given = (self.site is not None) + (self.rooms is not None) + (self.model is not None)
        if given + self.all != 1:
            raise ValueError("selector: give exactly one of site, rooms, model or all: true")
        return self


class BulkCommandRequest(CommandRequest):
    """A command for the rooms a selector picks."""

    selector: Selector = Field(examples=[{"site": "baku"}, {"rooms": ["baku/room-1"]}])


class CommandAccepted(BaseModel):
    """A command recorded and on its way."""

    id: str
    rooms: list[str]
    status: str = "queued"


class NewOperator(BaseModel):
    """An operator to create."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    role: Literal["viewer", "operator", "admin"]


def _hub(request: Request) -> HubSubscriber:
    hub: HubSubscriber = request.app.state.hub
    return hub


def require(role: str) -> Callable[[Request], Awaitable[Operator]]:
    """A dependency: the caller's operator, who must hold `role` (401/403 otherwise)."""

    async def check(request: Request) -> Operator:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="tribune-hub"'}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiProblem(
                401, "unauthorized", "Unauthorized", "send Authorization: Bearer <token>", challenge
            )
        attempts: FailedAttempts = request.app.state.token_attempts
        client = request.client.host if request.client else "unknown"
        wait = attempts.retry_after(client)
        if wait:
            detail = f"too many unknown tokens from {client}: try again in {wait} s"
            raise ApiProblem(
                429, "too-many-attempts", "Too many unknown tokens", detail,
                {"Retry-After": str(wait)},
            )  # fmt: skip
        operator = await _hub(request).store.operator(token_hash(token.strip()))
        if operator is None:
            count = attempts.failed(client)
            log.warning("hub api: unknown token from %s (%d in a row)", client, count)
            if count == attempts.limit:
                wait = attempts.retry_after(client)
                log.warning("hub api: %s locked out for %d s after %d unknown tokens",
                            client, wait, count)  # fmt: skip
            raise ApiProblem(401, "unauthorized", "Unauthorized", "unknown token", challenge)
        if not operator.may(role):
            detail = f"{operator.name} is {operator.role}; this needs {role}"
            raise ApiProblem(403, "forbidden", "Forbidden", detail)
        request.state.operator = operator
        return operator

    return check


Viewer = Annotated[Operator, Depends(require("viewer"))]
OperatorRole = Annotated[Operator, Depends(require("operator"))]
Admin = Annotated[Operator, Depends(require("admin"))]

router = APIRouter(prefix=API_PREFIX, responses=problem_responses(400, 401, 403, 422, 429))


@router.get("/me", summary="Who the token belongs to")
async def me(caller: Viewer) -> dict[str, Any]:
    """The caller's name and role, and the roles there are."""
    return {"name": caller.name, "role": caller.role, "roles": list(ROLES)}


@router.get("/rooms", summary="Every room the hub has heard from")
async def list_rooms(request: Request, caller: Viewer, site: SiteFilter = None) -> dict[str, Any]:
    """Rooms with status, last seen, state revision, devices' power, input and hours, and
    counts of open alerts and help requests (no snapshots); the fleet's hour thresholds."""
    rooms = await _hub(request).store.rooms()
    if site is not None:
        rooms = [room for room in rooms if room["id"].startswith(site + "/")]
    thresholds: Thresholds = request.app.state.thresholds
    return {"rooms": rooms, "thresholds": thresholds.model_dump()}


@router.get(
    "/rooms/{site}/{room}",
    summary="One room: snapshot and recent events",
    responses=problem_responses(404),
)
async def get_room(request: Request, caller: Viewer, site: Site, room: RoomName) -> dict[str, Any]:
    """The room's last state snapshot (highest revision) and its latest 50 events."""
    found = await _hub(request).store.room(f"{site}/{room}")
    if found is None:
        raise ApiProblem(404, "not-found", "No such room", f"no room {site}/{room} seen yet")
    return found


@router.get(
    "/rooms/{site}/{room}/events",
    summary="A room's events, e.g. its audit history",
    responses=problem_responses(404),
)
async def room_events(
    request: Request,
    caller: Viewer,
    site: Site,
    room: RoomName,
    type: Annotated[
        Literal["audit", "help", "change", "alert"] | None, Query(description="only this type")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=1, lt=2**63, description="seq below this (paging)")
    ] = None,
) -> dict[str, Any]:
    """Newest first; page with `before` = the smallest `seq` of the previous page."""
    store = _hub(request).store
    room_id = f"{site}/{room}"
    if await store.room(room_id, events=0) is None:
        raise ApiProblem(404, "not-found", "No such room", f"no room {room_id} seen yet")
    return {"room": room_id, "events": await store.events(room_id, type, limit, before)}


@router.post(
    "/rooms/{site}/{room}/commands",
    status_code=202,
    summary="Send a command to one room",
    responses=problem_responses(404, 422),
)
async def post_command(
    request: Request, caller: OperatorRole, site: Site, room: RoomName, body: CommandRequest
) -> CommandAccepted:
    """Queue the command; follow it at `GET /commands/{id}`."""
    hub = _hub(request)
    room_id = f"{site}/{room}"
    _check_action(body.action)
    if await hub.store.room(room_id, events=0) is None:
        raise ApiProblem(404, "not-found", "No such room", f"no room {room_id} seen yet")
    return await _send(hub, [room_id], body, caller)


@router.post(
    "/commands",
    status_code=202,
    summary="Send a command to many rooms: a centre, a list, or all",
    responses=problem_responses(404, 422),
)
async def post_bulk_command(
    request: Request, caller: OperatorRole, body: BulkCommandRequest
) -> CommandAccepted:
    """One command id for every room picked; each room's status at `GET /commands/{id}`.
    Offline rooms are included: the broker keeps the command for them until its deadline."""
    hub = _hub(request)
    _check_action(body.action)
    selector = body.selector
    if selector.rooms is not None:
        known = set(await hub.store.room_ids())
        unknown = sorted(set(selector.rooms) - known)
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise ApiProblem(404, "not-found", "No such room", f"never seen: {shown}")
        rooms = sorted(set(selector.rooms))
    elif selector.model is not None:
        rooms = [
            room["id"]
            for room in await hub.store.rooms()
            if any(d.get("model") == selector.model for d in room["devices"].values())
        ]
        if not rooms:
            detail = f"no room has a device reporting model {selector.model!r}"
            raise ApiProblem(404, "not-found", "No rooms", detail)
    else:
        rooms = await hub.store.room_ids(selector.site)
        if not rooms:
            where = f"in {selector.site}" if selector.site else "at all"
            raise ApiProblem(404, "not-found", "No rooms", f"no rooms seen {where}")
    return await _send(hub, rooms, body, caller)


@router.get("/commands", summary="The latest commands")
async def list_commands(
    request: Request, caller: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """Newest first, each with how many rooms are at each status."""
    return {"commands": await _hub(request).store.commands(limit)}


@router.get(
    "/commands/{command_id}",
    summary="A command and its status in each room",
    responses=problem_responses(404),
)
async def get_command(request: Request, caller: Viewer, command_id: str) -> dict[str, Any]:
    """`queued | delivered | done | failed | expired` per room, with the room's result."""
    found = await _hub(request).store.command(command_id)
    if found is None:
        raise ApiProblem(404, "not-found", "No such command", f"no command {command_id}")
    return found


@router.get("/alerts", summary="Alerts from the rooms")
async def list_alerts(
    request: Request,
    caller: Viewer,
    which: Annotated[
        Literal["open", "active", "all"],
        Query(description="open: active and not acknowledged; active; all (history)"),
    ] = "open",
    site: SiteFilter = None,
) -> dict[str, Any]:
    """One entry per (room, code, device): device offline, device error, lamp hours, outbox
    dropped; `active` is the room's latest word on it."""
    return {"alerts": await _hub(request).store.alerts(which, site)}


@router.post(
    "/alerts/{alert_id}/ack",
    summary="Acknowledge an alert",
    responses=problem_responses(404),
)
async def ack_alert(request: Request, caller: OperatorRole, alert_id: RowId) -> dict[str, Any]:
    """It leaves the open list; raised again by the room later, it comes back."""
    if not await _hub(request).store.ack_alert(alert_id, caller.name, time.time()):
        raise ApiProblem(404, "not-found", "No such alert", f"no alert {alert_id}")
    return {"id": alert_id, "acked_by": caller.name}


@router.get("/help-requests", summary="Instructors' calls for a technician")
async def list_help_requests(
    request: Request,
    caller: Viewer,
    which: Annotated[Literal["open", "all"], Query()] = "open",
    site: SiteFilter = None,
) -> dict[str, Any]:
    """Newest first: room, audit id, when, who, the note; open until acknowledged."""
    return {"help_requests": await _hub(request).store.help_requests(which, site)}


@router.post(
    "/help-requests/{site}/{room}/{request_id}/ack",
    summary="Acknowledge a help request (someone is on the way)",
    responses=problem_responses(404),
)
async def ack_help(
    request: Request, caller: OperatorRole, site: Site, room: RoomName, request_id: RowId
) -> dict[str, Any]:
    """Closes the request for everyone watching the fleet page."""
    room_id = f"{site}/{room}"
    if not await _hub(request).store.ack_help(room_id, request_id, caller.name, time.time()):
        detail = f"no open help request {request_id} from {room_id}"
        raise ApiProblem(404, "not-found", "No such help request", detail)
    return {"room": room_id, "id": request_id, "acked_by": caller.name}


@router.get("/operators", summary="Operators (never their tokens)")
async def list_operators(request: Request, caller: Admin) -> dict[str, Any]:
    """Name, role, created, last used."""
    return {"operators": await _hub(request).store.operators()}


@router.post(
    "/operators",
    status_code=201,
    summary="Create an operator; the token is in this answer only",
    responses=problem_responses(409, 422),
)
async def add_operator(request: Request, caller: Admin, body: NewOperator) -> dict[str, Any]:
    """The token is shown once; the hub keeps only its hash."""
    try:
        token = await create_operator(_hub(request).store, body.name, body.role)
    except ValueError as exc:
        raise ApiProblem(409, "conflict", "Operator exists", str(exc)) from None
    log.warning("hub: %s created operator %s (%s)", caller.name, body.name, body.role)
    return {"name": body.name, "role": body.role, "token": token}


@router.delete(
    "/operators/{name}",
    status_code=204,
    summary="Revoke an operator's token",
    responses=problem_responses(404),
)
async def remove_operator(request: Request, caller: Admin, name: str) -> Response:
    """The token stops working at once."""
    if not await _hub(request).store.remove_operator(name):
        raise ApiProblem(404, "not-found", "No such operator", f"no operator {name!r}")
    log.warning("hub: %s revoked operator %s", caller.name, name)
    return Response(status_code=204)


def _check_action(action: str) -> None:
    if action not in ACTIONS:
        detail = f"action: want one of {', '.join(ACTIONS)}"
        raise ApiProblem(422, "invalid-request", "Invalid request", detail)


async def _send(
    hub: HubSubscriber, rooms: list[str], body: CommandRequest, caller: Operator
) -> CommandAccepted:
    issued_by = f"operator:{caller.name}"
    args = body.args
    if body.action == "profile.push":
        args = await asyncio.to_thread(_profile_push_args, args)
    command_id = await hub.send_command(rooms, body.action, args, issued_by, body.ttl_s)
    log.warning(
        "hub: %s sent %s to %d room(s): command %s", issued_by, body.action, len(rooms), command_id
    )
    return CommandAccepted(id=command_id, rooms=rooms)


PUSH_KEYS = {"profile", "filename", "device", "model", "force"}
PUSH_MAX = MAX_PAYLOAD - 4096  # room for the id, deadline, signature and the rest of the body


def _profile_push_args(args: dict[str, Any]) -> dict[str, Any]:
    """Validate a pushed profile as a room will (shipped parents included) and add its
    SHA-256 and file name; 422 naming the line and field when it is not a valid profile."""
    from tribune.errors import ConfigError
    from tribune.profiles.flash import stage_profile
    from tribune.profiles.store import ProfileStore, sha256_of

    unknown = set(args) - PUSH_KEYS
    if unknown:
        detail = f"args: unknown keys {', '.join(sorted(unknown))} (want {', '.join(PUSH_KEYS)})"
        raise ApiProblem(422, "invalid-request", "Invalid request", detail)
    text = args.get("profile")
    if not isinstance(text, str) or not text.strip():
        raise ApiProblem(422, "invalid-request", "Invalid request", "args.profile: want YAML text")
    for key in ("device", "model", "filename"):
        if key in args and not isinstance(args[key], str):
            raise ApiProblem(422, "invalid-request", "Invalid request", f"args.{key}: want text")
    if "force" in args and not isinstance(args["force"], bool):
        detail = "args.force: want true or false"
        raise ApiProblem(422, "invalid-request", "Invalid request", detail)
    data = text.encode()
    name = args.get("filename") or "profile.yaml"
    with tempfile.TemporaryDirectory(prefix="tribune-hub-push-") as scratch:
        try:
            folder = FsPath(scratch)
            _, loaded = stage_profile(ProfileStore(folder), data, name, folder)
        except ConfigError as exc:
            raise ApiProblem(422, "invalid-profile", "Invalid profile", str(exc)) from None
    pushed = {**args, "filename": f"{loaded.profile.id}.yaml", "sha256": sha256_of(data)}
    size = len(json.dumps(pushed).encode())
    if size > PUSH_MAX:
        detail = f"the profile makes a {size}-byte command; rooms take at most {PUSH_MAX}"
        raise ApiProblem(422, "invalid-profile", "Profile too large to push", detail)
    return pushed


def create_hub_app(hub: HubSubscriber, thresholds: Thresholds | None = None) -> FastAPI:
    """The ASGI app over a started `hub`; the caller starts and stops the hub around it."""
    app = FastAPI(
        title="tribune hub API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.hub = hub
    app.state.thresholds = thresholds or Thresholds()
    app.state.token_attempts = FailedAttempts()  # unknown tokens per client address
    install_problem_handlers(app)
    app.include_router(router)
    # `GET /rooms` for a thousand rooms is about half a megabyte of JSON every few seconds.
    app.add_middleware(GZipMiddleware, minimum_size=2048)

    @app.get("/favicon.ico", include_in_schema=False)
    async def no_icon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def fleet_page() -> FileResponse:
        return FileResponse(FLEET_PAGE / "index.html", headers=_PAGE_HEADERS)

    @app.get("/fleet/{name}", include_in_schema=False)
    async def fleet_file(name: Annotated[str, Path(pattern=r"^[a-z0-9-]+\.(js|css|json)$")]) -> Any:
        path = FLEET_PAGE / name
        if not path.is_file():
            raise ApiProblem(404, "not-found", "Not found", name)
        return FileResponse(path, headers=_PAGE_HEADERS)

    return app


_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
