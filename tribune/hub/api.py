"""`create_hub_app`: the hub's REST API under `/api/v1` (loopback clients only, for now)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tribune import __version__
from tribune.api.problems import (
    ApiProblem,
    install_problem_handlers,
    problem_response,
    problem_responses,
)
from tribune.hub.subscriber import HubSubscriber
from tribune.sync.commands import ACTIONS

API_PREFIX = "/api/v1"
LOOPBACK = ("127.0.0.1", "::1")
NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_TTL = 7 * 24 * 3600  # the broker keeps a room's queued commands as long as its session

DESCRIPTION = """\
The fleet: every room's status, last seen, state and recent events; commands to rooms with a
per-room status (`queued | delivered | done | failed | expired`).

No operator accounts yet: only clients on the hub machine itself (loopback) are served; any
other client gets 403. Errors are `application/problem+json`.
"""

Site = Annotated[str, Path(pattern=NAME, description="the centre, e.g. `baku`")]
RoomName = Annotated[str, Path(pattern=NAME, description="the room, e.g. `room-1`")]


class CommandRequest(BaseModel):
    """A command for a room."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description=f"one of {', '.join(ACTIONS)}", examples=["scene.activate"])
    args: dict[str, Any] = Field(default_factory=dict, examples=[{"scene": "class-start"}])
    ttl_s: float = Field(
        default=300, gt=0, le=MAX_TTL, description="seconds until the room must refuse it"
    )


class CommandAccepted(BaseModel):
    """A command recorded and on its way."""

    id: str
    rooms: list[str]
    status: str = "queued"


router = APIRouter(prefix=API_PREFIX)


def _hub(request: Request) -> HubSubscriber:
    hub: HubSubscriber = request.app.state.hub
    return hub


@router.get("/rooms", summary="Every room the hub has heard from")
async def list_rooms(request: Request) -> dict[str, Any]:
    """Rooms with status, last seen and state revision (no snapshots)."""
    return {"rooms": await _hub(request).store.rooms()}


@router.get(
    "/rooms/{site}/{room}",
    summary="One room: snapshot and recent events",
    responses=problem_responses(404),
)
async def get_room(request: Request, site: Site, room: RoomName) -> dict[str, Any]:
    """The room's last state snapshot (highest revision) and its latest events."""
    found = await _hub(request).store.room(f"{site}/{room}")
    if found is None:
        raise ApiProblem(404, "not-found", "No such room", f"no room {site}/{room} seen yet")
    return found


@router.post(
    "/rooms/{site}/{room}/commands",
    status_code=202,
    summary="Send a command to one room",
    responses=problem_responses(404, 422),
)
async def post_command(
    request: Request, site: Site, room: RoomName, body: CommandRequest
) -> CommandAccepted:
    """Queue the command; follow it at `GET /commands/{id}`."""
    hub = _hub(request)
    room_id = f"{site}/{room}"
    if body.action not in ACTIONS:
        detail = f"action: want one of {', '.join(ACTIONS)}"
        raise ApiProblem(422, "invalid-request", "Invalid request", detail)
    if await hub.store.room(room_id, events=0) is None:
        raise ApiProblem(404, "not-found", "No such room", f"no room {room_id} seen yet")
    # No operator accounts yet: everything comes from the hub machine itself.
    command_id = await hub.send_command([room_id], body.action, body.args, "hub:local", body.ttl_s)
    return CommandAccepted(id=command_id, rooms=[room_id])


@router.get(
    "/commands/{command_id}",
    summary="A command and its status in each room",
    responses=problem_responses(404),
)
async def get_command(request: Request, command_id: str) -> dict[str, Any]:
    """`queued | delivered | done | failed | expired` per room, with the room's result."""
    found = await _hub(request).store.command(command_id)
    if found is None:
        raise ApiProblem(404, "not-found", "No such command", f"no command {command_id}")
    return found


def create_hub_app(hub: HubSubscriber) -> FastAPI:
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
    install_problem_handlers(app)
    app.include_router(router)

    @app.middleware("http")
    async def loopback_only(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        client = request.client.host if request.client else None
        if client not in LOOPBACK:
            detail = "the hub serves only its own machine until operator accounts exist"
            return problem_response(403, "forbidden", "Forbidden", detail)
        return await call_next(request)

    return app
