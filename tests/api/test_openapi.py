"""Schemathesis over the OpenAPI document: no 5xx for anything it sends, answers match the schema.

The room and uvicorn run on their own event loop in a thread (schemathesis calls synchronously),
on the simulated devices; requests come from loopback with the technician token, so every
endpoint is reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import TOKENS, Served, bearer, served_in_thread
from tests.strategies import json_values, published_operations

EXAMPLES = 100


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """`not_a_server_error`, except a device's own refusal (502) or silence (504)."""
    if response.status_code in (502, 504):
        problem = response.json()
        assert problem["type"].startswith("urn:tribune:problem:device-"), problem
        return True
    result: bool | None = not_a_server_error(ctx, response, case)
    return result


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    with served_in_thread(folder) as running:
        # The board takes actions only when on.
        body = {"board": {"power": "on"}}
        assert httpx.patch(f"{running.url}/api/v1/room/desired", json=body).status_code == 202
        yield running


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    return schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")


# (method, path, real path parameters to mix in, so generated cases also reach real devices)
OPERATIONS = [
    ("GET", "/api/v1/room", {}),
    ("PATCH", "/api/v1/room/desired", {}),
    ("GET", "/api/v1/devices/{device_id}", {"device_id": "projector"}),
    (
        "POST",
        "/api/v1/devices/{device_id}/actions/{action}",
        {"device_id": "board", "action": "volume_up"},
    ),
    ("POST", "/api/v1/devices/{device_id}/reread", {"device_id": "switcher"}),
    ("GET", "/api/v1/scenes", {}),
    ("POST", "/api/v1/scenes/{scene_id}/activate", {"scene_id": "class-end"}),
    ("GET", "/api/v1/sources", {}),
    ("POST", "/api/v1/sources/{source_id}/select", {"source_id": "laptop"}),
    ("GET", "/api/v1/audit", {}),
    ("GET", "/api/v1/health", {}),
    ("GET", "/api/v1/metrics", {}),
    # The touch panel's own (tribune/api/panel_api.py).
    ("GET", "/api/v1/panel", {}),
    ("POST", "/api/v1/help", {}),
    ("POST", "/api/v1/technician/session", {}),
    ("DELETE", "/api/v1/technician/session", {}),
    ("GET", "/api/v1/logs", {}),
    ("GET", "/api/v1/profiles", {}),
    # Flashing profiles (tribune/api/flash_api.py): random text is an invalid profile (422).
    ("GET", "/api/v1/technician/devices", {}),
    ("POST", "/api/v1/technician/devices/{device_id}/flash", {"device_id": "switcher"}),
    ("POST", "/api/v1/technician/devices/{device_id}/rollback", {"device_id": "switcher"}),
    ("GET", "/api/v1/technician/profiles/{profile_id}/history", {"profile_id": "extron-sis"}),
]


def test_every_operation_is_exercised(api_schema: Any) -> None:
    published = published_operations(api_schema)
    assert published == {(method, path) for method, path, _ in OPERATIONS}


JSON = json_values()
CAPABILITIES = ["power", "input", "volume", "mute", "route", "freeze", "lamp_hours", "nope"]
NAMED_VALUES = st.sampled_from(["on", "off", "standby", "hdmi1", "digital1", "1", "2", "+1", ""])


def real_patches() -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    """Patches naming the room's real devices and capabilities, with any JSON as values."""
    device = st.sampled_from(["projector", "board", "switcher"])
    caps = st.dictionaries(
        st.sampled_from(CAPABILITIES),
        NAMED_VALUES | JSON | st.dictionaries(NAMED_VALUES, JSON),
        max_size=3,
    )
    return st.dictionaries(device, caps, min_size=1, max_size=3)


@pytest.mark.parametrize(
    ("method", "path", "real"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_operation_conforms(
    api_schema: Any, served: Served, method: str, path: str, real: dict[str, str]
) -> None:
    operation = api_schema[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if path == "/api/v1/room/desired":
        strategies.append(real_patches().flatmap(lambda body: operation.as_strategy(body=body)))
    if real:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=served.url, headers=bearer(TOKENS.technician), checks=CHECKS, timeout=20
        )

    check()
