"""Errors as RFC 9457 problem details (`application/problem+json`), converted at the edge.

Tribune's exceptions map to statuses here and nowhere else: an unknown name is 404, a value the
device does not take is 422, a device that refuses is 502, one that does not answer is 504.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from tribune.errors import (
    DeviceError,
    DeviceTimeoutError,
    LinkError,
    NotSupportedError,
    ProtocolError,
    TribuneError,
)
from tribune.room import UnknownError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """What went wrong, in RFC 9457 form."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str = Field(description="Short summary of the kind of problem")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong this time, for people")


class ApiProblem(Exception):
    """Raise in a handler to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers


def problem_response(
    status: int, kind: str, title: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A problem+json response; `kind` becomes `urn:tribune:problem:<kind>`."""
    body = {"type": f"urn:tribune:problem:{kind}", "title": title, "status": status}
    body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def from_tribune_error(exc: TribuneError) -> ApiProblem:
    """The HTTP face of a tribune error."""
    if isinstance(exc, UnknownError):
        return ApiProblem(404, "not-found", "No such thing in this room", str(exc))
    if isinstance(exc, NotSupportedError):
        return ApiProblem(422, "not-supported", "Not supported by the device", str(exc))
    if isinstance(exc, DeviceTimeoutError | LinkError):
        return ApiProblem(504, "device-unreachable", "The device did not answer", str(exc))
    if isinstance(exc, DeviceError | ProtocolError):
        return ApiProblem(502, "device-refused", "The device refused", str(exc))
    return ApiProblem(500, "internal", "Internal error", str(exc))


def _problem(exc: ApiProblem) -> JSONResponse:
    return problem_response(exc.status, exc.kind, exc.title, exc.detail, exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error the app answers with is problem+json."""

    async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return _problem(exc)

    async def on_tribune_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TribuneError)
        problem = from_tribune_error(exc)
        if problem.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return _problem(problem)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(422, "invalid-request", "Invalid request", _describe(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(
            exc.status_code, "http", _title(exc.status_code), exc.detail, headers
        )

    async def on_anything_else(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem_response(500, "internal", "Internal error", "see the service log")

    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(TribuneError, on_tribune_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_anything_else)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json answers."""
    schema = Problem.model_json_schema()
    return {
        status: {"content": {PROBLEM_JSON: {"schema": schema}}, "description": _title(status)}
        for status in statuses
    }
