"""Every technician endpoint refuses callers without the technician token.

The endpoints are found in the app's routes (those that depend on `require_technician`), so a
new one is covered the day it is added; and anything under `/technician/` must be one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from tests.api.conftest import LOCAL, REMOTE, TOKENS, bearer, client_for
from tests.api.test_contract import assert_problem
from tribune.api.access import require_technician

# The one technician-path endpoint anyone may call: it is how a PIN becomes a technician token.
PIN_EXCHANGE = ("POST", "/api/v1/technician/session")
# Real names for path parameters, so that the technician token gets past lookups too.
PARAMETERS = {"device_id": "switcher", "profile_id": "extron-sis", "action": "volume_up"}


def _depends_on(dependant: Dependant, wanted: Callable[..., Any]) -> bool:
    return any(sub.call is wanted or _depends_on(sub, wanted) for sub in dependant.dependencies)


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, into included routers (FastAPI keeps them as their own route objects
    now; `test_the_enumeration_is_complete` notices if that changes again)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def technician_endpoints(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every route that needs the technician scope."""
    for route in api_routes(app.routes):
        if _depends_on(route.dependant, require_technician):
            for method in sorted(route.methods or ()):
                yield method, route.path


def test_the_enumeration_is_complete(app: FastAPI) -> None:
    """Every operation the OpenAPI document publishes is among the routes walked here."""
    walked = {(m, r.path) for r in api_routes(app.routes) for m in r.methods or ()}
    published = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert published <= walked
    # And the document's "(technician)" summaries agree with the dependency.
    marked = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        if "(technician)" in operation.get("summary", "")
    }
    assert marked <= set(technician_endpoints(app))


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMETERS.get(m.group(1), "x"), path)


def test_the_technician_endpoints_are_found(app: FastAPI) -> None:
    found = set(technician_endpoints(app))
    assert {
        ("POST", "/api/v1/devices/{device_id}/reread"),
        ("GET", "/api/v1/logs"),
        ("GET", "/api/v1/profiles"),
        ("DELETE", "/api/v1/technician/session"),
        ("POST", "/api/v1/technician/devices/{device_id}/flash"),
    } <= found
    under_technician = {
        (method, route.path)
        for route in api_routes(app.routes)
        if "/technician/" in route.path
        for method in route.methods or ()
    }
    assert under_technician - {PIN_EXCHANGE} <= found, "a /technician/ route without the scope"
    assert PIN_EXCHANGE not in found


async def test_every_technician_endpoint_refuses_other_callers(app: FastAPI) -> None:
    endpoints = sorted(technician_endpoints(app))
    assert len(endpoints) >= 8
    async with client_for(app, LOCAL) as local, client_for(app, REMOTE) as remote:
        for method, path in endpoints:
            url = _url(path)
            where = f"{method} {path}"
            # The lectern PC without a token is the panel: instructor scope only.
            answer = await local.request(method, url)
            assert_problem(answer, 401, "technician")
            assert answer.headers["WWW-Authenticate"].startswith("Bearer"), where
            assert_problem(await remote.request(method, url), 401)
            for client in (local, remote):
                refused = await client.request(method, url, headers=bearer(TOKENS.api))
                assert_problem(refused, 403, "technician")
                assert "insufficient_scope" in refused.headers["WWW-Authenticate"], where


async def test_the_technician_token_gets_past_every_one(app: FastAPI) -> None:
    """Whatever the answer (a missing body is 422, nothing to roll back is 409), it is not a
    refusal of the caller."""
    async with client_for(app, REMOTE) as remote:
        for method, path in sorted(technician_endpoints(app)):
            answer = await remote.request(method, _url(path), headers=bearer(TOKENS.technician))
            assert answer.status_code not in (401, 403, 429), (method, path, answer.text)


@pytest.mark.parametrize("token", [TOKENS.api, None])
async def test_a_technician_scope_is_not_granted_by_the_panel_header(
    app: FastAPI, token: str | None
) -> None:
    """`X-Tribune-Origin: panel` only labels the audit; it grants nothing."""
    headers = {"X-Tribune-Origin": "panel", **(bearer(token) if token else {})}
    async with client_for(app, LOCAL) as local:
        for method, path in sorted(technician_endpoints(app)):
            answer = await local.request(method, _url(path), headers=headers)
            assert answer.status_code in (401, 403), (method, path)
