"""The `/api/v1` endpoints: each reads the room or hands it an intent with the caller's name."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, WebSocket
from fastapi.responses import PlainTextResponse

from tribune.api import models
from tribune.api.access import principal_of, require_technician
from tribune.api.metrics import CONTENT_TYPE, render_metrics
from tribune.api.problems import PROBLEM_JSON, ApiProblem, problem_responses
from tribune.api.stream import stream_room
from tribune.api.tokens import Principal
from tribune.drivers.runtime import HealthStatus
from tribune.errors import NotSupportedError, TribuneError
from tribune.profiles.schema import ValueType
from tribune.room import Room, UnknownError
from tribune.store import AuditEntry

API_PREFIX = "/api/v1"

router = APIRouter(
    prefix=API_PREFIX,
    responses=problem_responses(400, 401, 403, 421, 422, 429),
)

Id = Annotated[str, Path(description="a name from the room config, e.g. `projector`")]


def get_room(request: Request) -> Room:
    """The room this app drives."""
    room: Room = request.app.state.room
    return room


RoomDep = Annotated[Room, Depends(get_room)]
Caller = Annotated[Principal, Depends(principal_of)]
Technician = Annotated[Principal, Depends(require_technician)]


@router.get("/room", response_model=models.Room, summary="The whole room")
async def get_room_state(room: RoomDep, caller: Caller) -> dict[str, Any]:
    """Every device with its reported and desired state and how far the room has converged."""
    return room.snapshot()


@router.patch(
    "/room/desired",
    status_code=202,
    response_model=models.IntentAccepted,
    responses=problem_responses(404, 422),
    summary="Change the desired state",
)
async def patch_desired(
    room: RoomDep,
    caller: Caller,
    patch: Annotated[
        models.DesiredPatch,
        Body(
            min_length=1,
            description="`{device: {capability: value}}`; latest intent wins",
            examples=[{"projector": {"power": "on", "input": "hdmi1"}}],
        ),
    ],
) -> models.IntentAccepted:
    """Store the intent (durably) and let the room drive the devices toward it."""
    _check_patch(room, patch)
    entry = await room.apply(patch, who=caller.who, actor=caller.actor)
    return _accepted(room, entry)


@router.get(
    "/devices/{device_id}",
    response_model=models.Device,
    responses=problem_responses(404),
    summary="One device",
)
async def get_device(room: RoomDep, caller: Caller, device_id: Id) -> dict[str, Any]:
    """One device as in `GET /room`."""
    return room.device_snapshot(device_id)


@router.post(
    "/devices/{device_id}/actions/{action}",
    response_model=models.ActionDone,
    responses=problem_responses(404, 422, 502, 504),
    summary="Run a one-shot action",
)
async def run_action(
    room: RoomDep,
    caller: Caller,
    device_id: Id,
    action: Annotated[str, Path(description="one of the device's `actions`")],
    params: Annotated[
        models.ActionParams | None, Body(description="template parameters, if it takes any")
    ] = None,
) -> models.ActionDone:
    """A command that is not state (volume step, dial, camera preset); answers when acknowledged."""
    as_text = {key: _param_text(value) for key, value in (params or {}).items()}
    entry = await room.device_action(device_id, action, as_text, who=caller.who, actor=caller.actor)
    return models.ActionDone(audit_id=entry.id, device=device_id, action=action, result="done")


@router.post(
    "/devices/{device_id}/reread",
    response_model=models.RereadDone,
    responses=problem_responses(404, 502, 504),
    summary="Read every readable capability now (technician)",
)
async def reread_device(room: RoomDep, caller: Technician, device_id: Id) -> models.RereadDone:
    """Ask the device for every value it can report, ahead of the poll plan."""
    runtime = room.runtimes.get(device_id)
    if runtime is None:
        raise UnknownError(f"no device {device_id!r}")
    reads: dict[str, Any] = {}
    for name, cap in sorted(runtime.compiled.capabilities.items()):
        if not cap.readable:
            continue
        if cap.type is ValueType.ROUTE:
            for output in cap.spec.outputs or []:
                reads[f"{name}.{output}"] = runtime.get(name, output=output)
        else:
            reads[name] = runtime.get(name)
    # Submitted together: the runtime sends them one after another on its link.
    outcomes = await asyncio.gather(*reads.values(), return_exceptions=True)
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    failure: TribuneError | None = None
    for key, outcome in zip(reads, outcomes, strict=True):
        if isinstance(outcome, TribuneError):
            errors[key] = str(outcome)
            failure = failure or outcome
        elif isinstance(outcome, BaseException):
            raise outcome
        elif "." in key:
            values.setdefault(key.split(".", 1)[0], {}).update(outcome)
        else:
            values[key] = outcome
    result = "done" if not errors else f"failed: {len(errors)} of {len(reads)}"
    entry = await room.store.audit(
        caller.who, caller.actor, "device.reread", {"device": device_id}, result
    )
    room.bus.publish("audit", entry.as_dict())
    if failure is not None and not values:
        raise failure
    return models.RereadDone(audit_id=entry.id, device=device_id, values=values, errors=errors)


@router.get("/scenes", response_model=list[models.Scene], summary="The room's scenes")
async def list_scenes(room: RoomDep, caller: Caller) -> list[models.Scene]:
    """Scenes in panel order."""
    scenes = [
        models.Scene(
            id=scene_id,
            label=models.Label(**scene.label.model_dump()),
            order=scene.order,
            source=scene.source,
        )
        for scene_id, scene in room.config.scenes.items()
    ]
    return sorted(scenes, key=lambda s: (s.order, s.id))


@router.post(
    "/scenes/{scene_id}/activate",
    status_code=202,
    response_model=models.IntentAccepted,
    responses=problem_responses(404, 422),
    summary="Activate a scene",
)
async def activate_scene(room: RoomDep, caller: Caller, scene_id: Id) -> models.IntentAccepted:
    """Set the scene's desired state (and its source); answers before the devices get there."""
    entry = await room.activate_scene(scene_id, who=caller.who, actor=caller.actor)
    return _accepted(room, entry)


@router.get("/sources", response_model=list[models.Source], summary="The panel's sources")
async def list_sources(room: RoomDep, caller: Caller) -> list[models.Source]:
    """Sources in panel order, with the one on show marked `active`."""
    sources = [
        models.Source(
            id=source_id,
            label=models.Label(**source.label.model_dump()),
            order=source.order,
            icon=source.icon,
            active=source_id == room.source,
        )
        for source_id, source in room.config.sources.items()
    ]
    return sorted(sources, key=lambda s: (s.order, s.id))


@router.post(
    "/sources/{source_id}/select",
    status_code=202,
    response_model=models.IntentAccepted,
    responses=problem_responses(404, 422),
    summary="Show a source",
)
async def select_source(room: RoomDep, caller: Caller, source_id: Id) -> models.IntentAccepted:
    """Route the source to the screens (switcher ties, projector input...)."""
    entry = await room.select_source(source_id, who=caller.who, actor=caller.actor)
    return _accepted(room, entry)


@router.get("/audit", response_model=models.AuditPage, summary="The audit log")
async def read_audit(
    room: RoomDep,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000, description="entries per page")] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="only entries older than this id")
    ] = None,
) -> models.AuditPage:
    """Who asked what and what came of it, newest first."""
    entries = await room.store.audit_tail(limit, before)
    next_before = entries[-1].id if len(entries) == limit else None
    return models.AuditPage(
        entries=[models.AuditEntry(**e.as_dict()) for e in entries], next_before=next_before
    )


@router.get("/health", response_model=models.ServiceHealth, summary="Service liveness")
async def health(room: RoomDep, caller: Caller, request: Request) -> models.ServiceHealth:
    """The service answers; each device's health in one line."""
    devices = {
        device_id: models.DeviceHealth(
            online=runtime.health.status is HealthStatus.ONLINE,
            status=str(runtime.health.status),
            last_error=runtime.health.last_error,
        )
        for device_id, runtime in room.runtimes.items()
    }
    degraded = bool(room.broken) or not all(d.online for d in devices.values())
    return models.ServiceHealth(
        status="degraded" if degraded else "ok",
        room=room.id,
        uptime_s=round(time.monotonic() - request.app.state.started, 3),
        converged=room.converged,
        devices=devices,
        broken=dict(room.broken),
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics",
)
async def metrics(room: RoomDep, caller: Caller) -> PlainTextResponse:
    """Devices online, command latency histogram, errors, usage counters, convergence."""
    counters = await room.store.counters()
    return PlainTextResponse(render_metrics(room, counters), media_type=CONTENT_TYPE)


@router.websocket("/ws")
async def room_events(
    websocket: WebSocket,
    since: Annotated[int | None, Query(ge=0)] = None,
    epoch: Annotated[str | None, Query(max_length=64)] = None,
) -> None:
    """Events with their sequence number; see `docs/api.md`."""
    room: Room = websocket.app.state.room
    await stream_room(
        websocket, room, epoch=websocket.app.state.epoch, since=since, their_epoch=epoch
    )


def _check_patch(room: Room, patch: models.DesiredPatch) -> None:
    """Refuse a bad patch as 422 whatever the value checks raise (they see arbitrary JSON)."""
    try:
        room.validate(patch)
    except TribuneError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise NotSupportedError(f"invalid value: {exc}") from None


def _accepted(room: Room, entry: AuditEntry) -> models.IntentAccepted:
    status: dict[str, dict[str, Any]] = {}
    reasons: dict[str, dict[str, str]] = {}
    for device_id, reconciler in room.reconcilers.items():
        if reconciler.status:
            status[device_id] = {name: s.state for name, s in reconciler.status.items()}
        why = {name: s.reason for name, s in reconciler.status.items() if s.reason}
        if why:
            reasons[device_id] = why
    return models.IntentAccepted(
        audit_id=entry.id, converged=room.converged, status=status, reasons=reasons
    )


def _param_text(value: models.ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = ["API_PREFIX", "PROBLEM_JSON", "ApiProblem", "router"]
