"""`create_app`: the local API (and the touch panel's files) for one room."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from tribune import __version__
from tribune.api.access import AccessControl
from tribune.api.flash_api import router as flash_router
from tribune.api.logring import LogRing
from tribune.api.models import Pointer
from tribune.api.panel_api import router as panel_router
from tribune.api.problems import install_problem_handlers
from tribune.api.routes import API_PREFIX, router
from tribune.api.technician import TechnicianSessions
from tribune.api.tokens import Tokens
from tribune.profiles.flash import ProfileFlasher
from tribune.room import Room

DESCRIPTION = """\
Room control for one classroom: its devices, desired and reported state, scenes, sources,
audit log, metrics, and a WebSocket of numbered events at `/api/v1/ws`.

From the lectern PC itself (loopback, `Host: 127.0.0.1:PORT`) no token is needed; any other
client sends `Authorization: Bearer <token>` (the files in `DATA_DIR/tokens/`). Technician
endpoints need the technician token from anywhere. After 10 unknown tokens in 5 minutes a client
address gets 429 with `Retry-After`. Errors are `application/problem+json`.
"""


def create_app(
    room: Room,
    *,
    tokens: Tokens,
    allowed_hosts: Sequence[str] = (),
    panel_dir: Path | None = None,
    flasher: ProfileFlasher | None = None,
) -> FastAPI:
    """The ASGI app for `room`; the caller starts and stops the room around serving it.
    `flasher`: the room's one `ProfileFlasher`, when the hub link already has it."""
    app = FastAPI(
        title="tribune room API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.room = room
    app.state.started = time.monotonic()
    # Names this run of the service: a WebSocket client's `since` means nothing to another run.
    app.state.epoch = secrets.token_hex(8)
    app.state.technician_sessions = TechnicianSessions()
    # Flashing needs the data dir's profile store (a room built without one cannot flash).
    if flasher is None and room.profiles is not None:
        flasher = ProfileFlasher(room, room.profiles)
    app.state.flasher = flasher  # one per room: a flash from the hub and one from here exclude
    LogRing.installed()  # the technician screen's log tail starts with this service
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(panel_router)
    app.include_router(flash_router)
    if panel_dir is not None:
        app.mount("/", StaticFiles(directory=panel_dir, html=True), name="panel")
    else:

        @app.get("/", include_in_schema=False)
        async def pointer() -> JSONResponse:
            body = Pointer(
                service="tribune",
                room=room.id,
                api=f"{API_PREFIX}/room",
                openapi=f"{API_PREFIX}/openapi.json",
            )
            return JSONResponse(body.model_dump())

    async def audit_access(result: str, detail: dict[str, Any]) -> None:
        entry = await room.store.audit(
            "api", None, "api.token", {"room": room.id, **detail}, result
        )
        room.bus.publish("audit", entry.as_dict())

    app.add_middleware(
        AccessControl,
        tokens=tokens,
        allowed_hosts=list(allowed_hosts),
        sessions=app.state.technician_sessions,
        audit=audit_access,
    )
    app.openapi = lambda: _openapi_with_bearer(app)  # type: ignore[method-assign]
    return app


def _openapi_with_bearer(app: FastAPI) -> dict[str, Any]:
    """The generated document, stating that a bearer token is optional (loopback) or needed."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "the api or technician token (DATA_DIR/tokens/*.token)",
            }
        }
        schema["security"] = [{}, {"bearer": []}]
        app.openapi_schema = schema
    return app.openapi_schema
